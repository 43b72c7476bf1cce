"""Carrying out a plan's faults and user actions against a deployment and an emulator process.

Each strike returns at once with what it did; what undoes it later (a restart, a SIGCONT, the end of
a 429 storm) is returned as a ``Recovery`` for the runner to call at its moment. Nothing here waits
for Airflow to react: the history records what happened, the checker judges it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from resumable_triggers.testing.airflow import AirflowApiError, AirflowDeployment, DeploymentError
from resumable_triggers.testing.chaos._history import ActionEvent, FaultEvent, ti_key
from resumable_triggers.testing.chaos._observe import Observer
from resumable_triggers.testing.chaos._plan import ActionSpec, FaultSpec
from resumable_triggers.testing.emulator import EmulatorProcess

_SIGNALS = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM, "sigstop": signal.SIGSTOP}
# How long a user action keeps trying while the API server is down (a fault of its own).
ACTION_PATIENCE_SECONDS = 30.0
# A SIGTERM not obeyed in this long is followed by SIGKILL, as a container runtime does after its
# termination grace period. Without it a SIGTERMed PostgreSQL stays in "smart" shutdown for as long
# as any client keeps its connection (a frozen Celery worker's, forever), refusing every new one.
TERMINATION_GRACE_SECONDS = 15.0
# What every other component needs in order to come up (readiness is checked through the API
# server), in the order they must come back.
FOUNDATIONS = ("postgres", "redis", "api-server")


def _maybe_sent(exc: AirflowApiError) -> bool:
    """A refused connection sent nothing; a timeout or a reset may have delivered the request."""
    return "refused" not in str(exc).lower()


@dataclass(frozen=True, slots=True)
class Recovery:
    at: float  # epoch seconds
    what: str
    undo: Callable[[], None]


class Striker:
    def __init__(self, airflow: AirflowDeployment, emulator: EmulatorProcess, observer: Observer) -> None:
        self.airflow = airflow
        self.emulator = emulator
        self.observer = observer
        self.down: set[str] = set()  # instances a fault took down, until their restart

    def fault(self, spec: FaultSpec) -> tuple[FaultEvent, Recovery | None]:
        start = time.time()
        try:
            if spec.target == "emulator":
                detail, recovery = self._emulator(spec, start)
            elif spec.target in ("task-process", "supervisor"):
                detail, recovery = self._task(spec, start)
            else:
                detail, recovery = self._component(spec, start)
        except (DeploymentError, AirflowApiError, ConnectionError, OSError, ValueError) as exc:
            return FaultEvent(
                start, time.time(), spec.target, spec.kind, f"could not strike: {exc}"[:300], ok=False
            ), None
        if detail is None:
            return FaultEvent(start, time.time(), spec.target, spec.kind, "no live target", ok=False), None
        end = recovery.at if recovery is not None else time.time()
        return FaultEvent(start, end, spec.target, spec.kind, detail), recovery

    def _task(self, spec: FaultSpec, now: float) -> tuple[str | None, Recovery | None]:
        role = "task" if spec.target == "task-process" else "supervisor"
        candidates = []
        for tp in sorted(self.airflow.faults.task_processes(), key=lambda tp: tp.ti_id):
            pid = tp.task_pid if role == "task" else tp.supervisor_pid
            if pid is not None and pid > 0 and (role != "task" or tp.task_started):
                candidates.append((tp.ti_id, pid))
        if not candidates:
            return None, None
        ti_id, pid = candidates[spec.pick % len(candidates)]
        sig = _SIGNALS[spec.kind]
        os.kill(pid, sig)
        detail = f"{role} pid {pid} of {self.observer.ti_ids.get(ti_id, ti_id)}"
        if sig is not signal.SIGSTOP:
            return detail, None

        def cont() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

        return detail, Recovery(now + spec.duration_seconds, f"SIGCONT {role} {pid}", cont)

    def _component(self, spec: FaultSpec, now: float) -> tuple[str | None, Recovery | None]:
        name = spec.target
        if name not in self.airflow.pids():
            return None, None
        if spec.kind == "sigstop":
            pids = self.airflow.faults.pause(name)
            return f"{name} ({len(pids)} processes)", Recovery(
                now + spec.duration_seconds, f"SIGCONT {name}", lambda: self._resume(name)
            )
        self.down.add(name)
        detail = name
        try:
            self.airflow.faults.kill(name, _SIGNALS[spec.kind], timeout_seconds=TERMINATION_GRACE_SECONDS)
        except DeploymentError:
            if spec.kind == "sigterm":
                with contextlib.suppress(DeploymentError):
                    self.airflow.faults.kill(name, signal.SIGKILL, timeout_seconds=10)
                detail = f"{name} (still running after {TERMINATION_GRACE_SECONDS:g} s: SIGKILL)"
        return detail, Recovery(now + spec.duration_seconds, f"restart {name}", lambda: self._recover(name))

    def _resume(self, name: str) -> None:
        self.airflow.faults.resume(name)

    def _recover(self, name: str) -> None:
        if name in self.down:  # else a restart that needed it brought it back early
            self._restart(name)

    def _restart(self, name: str) -> None:
        # A restart waits for readiness, which needs the database, the broker and the API server (it
        # is checked through the latter): a frozen or dead one would hold the restart until its
        # timeout, and every strike behind it, so their faults end early here.
        instances = self.airflow.instances
        for foundation in FOUNDATIONS[: FOUNDATIONS.index(name)] if name in FOUNDATIONS else FOUNDATIONS:
            if foundation not in instances:
                continue
            if foundation in self.airflow.faults.paused():
                self.airflow.faults.resume(foundation)
            if foundation not in self.airflow.pids():
                self._restart(foundation)
        for _ in range(3):
            try:
                self.airflow.restart(name)
                break
            except DeploymentError:
                time.sleep(2)
        self.down.discard(name)

    def revive(self) -> list[FaultEvent]:
        """Restart every instance that died by itself (not one a fault took down and will restart):
        on SQLite, a process frozen inside a write makes the others crash on "database is locked".
        Each is recorded, as a fault the deployment did to itself."""
        running = self.airflow.pids()
        events = []
        for name in self.airflow.instances:
            if name in running or name in self.down:
                continue
            start = time.time()
            self._restart(name)
            events.append(FaultEvent(start, time.time(), name, "died", "exited by itself; restarted"))
        return events

    def _emulator(self, spec: FaultSpec, now: float) -> tuple[str | None, Recovery | None]:
        control = self.emulator.control
        if spec.kind == "storm_429":
            control.set_rate_limit(None, requests_per_second=2.0, burst=2.0)
            return "2 requests/s for the workspace, 429 + Retry-After beyond", Recovery(
                now + spec.duration_seconds, "lift the 429 storm", lambda: control.set_rate_limit(None, None)
            )
        if spec.kind == "restart":
            with contextlib.suppress(ConnectionError, ValueError):
                self.observer.merge_log()
            self.emulator.restart()  # SIGTERM: it writes its state file, and comes back on the same port
            return "restarted from its state file", None
        delay = 3.0 if spec.kind == "latency" else 0.0
        retry_after = 1.0 if spec.kind == "http_error" and spec.status == 503 else None
        control.inject_fault(
            spec.endpoint,
            spec.kind,
            count=max(1, spec.count),
            status=spec.status,
            retry_after_seconds=retry_after,
            delay_seconds=delay,
        )
        status = f" {spec.status}" if spec.kind == "http_error" else ""
        return f"{spec.kind}{status} x{max(1, spec.count)} on {spec.endpoint or 'any endpoint'}", None

    def action(self, spec: ActionSpec) -> ActionEvent:
        rest = self.airflow.rest
        do = {
            "mark_failed": rest.mark_task_failed,
            "mark_success": rest.mark_task_success,
            "clear": rest.clear_task,
        }[spec.action]
        key = ti_key(spec.dag_id, spec.run_id, spec.task_id, -1)
        start = time.time()
        deadline = start + ACTION_PATIENCE_SECONDS
        while True:
            attempt = time.time()
            try:
                do(spec.dag_id, spec.run_id, spec.task_id)
                return ActionEvent(attempt, time.time(), spec.action, key)
            except AirflowApiError as exc:
                detail = str(exc)[:200]
                if exc.status is None and _maybe_sent(exc):
                    # No answer: it may be applied later. Trying again could apply it twice.
                    return ActionEvent(attempt, time.time(), spec.action, key, False, detail, answered=False)
                if (exc.status is not None and exc.status < 500) or time.time() > deadline:
                    return ActionEvent(attempt, time.time(), spec.action, key, ok=False, detail=detail)
                time.sleep(1.0)

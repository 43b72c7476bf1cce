"""The demo's live timeline: event lines, plus a state line whenever a task, a run or a count changes.

A background thread samples the deployment (task states over REST) and the emulator (runs, counters
over its control API) every half second. Output is plain text, one line at a time, so it reads the
same in a terminal, a CI log or a pipe.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from resumable_triggers.testing import EmulatorControl
from resumable_triggers.testing.airflow import AirflowDeployment

SAMPLE_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the timeline shows of the world at one moment."""

    tasks: tuple[tuple[str, str, int], ...]  # (task id, state, try number), in DAG order
    runs: tuple[tuple[str, str], ...]  # (task id the run belongs to, its state), oldest first
    submitted: int  # runs the workspace created so far

    def line(self) -> str:
        tasks = "  ".join(f"{t}={s}" + (f"(try {n})" if n > 1 else "") for t, s, n in self.tasks)
        runs = ", ".join(f"{t} {s}" for t, s in self.runs) or "none"
        return f"   tasks: {tasks} | Databricks runs: {runs} | runs submitted: {self.submitted}"


@dataclass
class Timeline:
    """Prints ``[  12.3s] what happened`` lines and, from a sampling thread, state changes."""

    out: TextIO = sys.stdout
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _last: Snapshot | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def event(self, text: str) -> None:
        self._print(f"[{self.elapsed():6.1f}s] {text}")

    def heading(self, text: str) -> None:
        self._print("")
        self._print(f"[{self.elapsed():6.1f}s] == {text}")

    def _print(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def watch(self, sample: Callable[[], Snapshot | None]) -> None:
        """Start printing a state line whenever ``sample()`` returns something new."""

        def loop() -> None:
            while not self._stop.wait(SAMPLE_SECONDS):
                self.sample_now(sample)

        self._thread = threading.Thread(target=loop, name="demo-timeline", daemon=True)
        self._thread.start()

    def sample_now(self, sample: Callable[[], Snapshot | None]) -> None:
        try:
            snapshot = sample()
        except Exception:  # noqa: BLE001 - a component being killed or restarted: try again later
            return
        if snapshot is not None and snapshot != self._last:
            self._last = snapshot
            self._print(f"[{self.elapsed():6.1f}s] {snapshot.line()}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def sampler(
    airflow: AirflowDeployment,
    control: EmulatorControl,
    dag_id: str,
    run_id: str,
    task_ids: tuple[str, ...],
    task_of_run: Callable[[dict[str, Any]], str],
) -> Callable[[], Snapshot]:
    """A function that reads one ``Snapshot`` of the DAG run and of the workspace."""

    def sample() -> Snapshot:
        answer = airflow.rest.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", timeout_seconds=5)
        by_task = {ti["task_id"]: ti for ti in answer["task_instances"]}
        tasks = tuple(
            (t, str(ti.get("state") or "none"), int(ti.get("try_number") or 0))
            for t, ti in ((t, by_task.get(t, {})) for t in task_ids)
        )
        runs = tuple((task_of_run(r), run_state(r)) for r in control.runs())
        return Snapshot(tasks, runs, control.counters().runs_submitted)

    return sample


def run_state(run: dict[str, Any]) -> str:
    """``RUNNING``, or ``SUCCESS``/``CANCELED``/... once the run is over."""
    state = run["state"]
    if state["life_cycle_state"] == "TERMINATED":
        return str(state.get("result_state") or "TERMINATED")
    return str(state["life_cycle_state"])


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A plain-text table; numbers (all-digit cells) are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: tuple[str, ...]) -> str:
        aligned = (c.rjust(w) if c.isdigit() else c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return "  ".join(aligned)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r).rstrip() for r in rows)])

"""What the end-to-end Databricks tests share: starting a DAG run, opening windows, checking invariants.

``DatabricksE2E`` is one test's view of the shared deployment and emulator (fixture ``dbx``);
``DagRun`` one DAG run of ``tests/e2e/dags/e2e_databricks.py`` with the waits a fault test needs.
Every wait is on an observable side effect (a task state, a request at the emulator, a run, a gate
file, a process), never a bare sleep, so a slow machine makes the tests slower, not flaky.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumable_triggers.testing import EmulatorProcess
from resumable_triggers.testing.airflow import AirflowApiError, AirflowDeployment, TaskProcesses

TASK_ID = "etl"
RECORD_KEY = "resumable_triggers.databricks_submit_run"
TERMINAL_LIFE_CYCLE_STATES = frozenset({"TERMINATED", "INTERNAL_ERROR", "SKIPPED"})
# Every wait's ceiling; generous because the machine may be shared. Waits end as soon as they can.
WAIT_SECONDS = 90.0
_counter = itertools.count(1)


def signal_pid(pid: int | None, sig: signal.Signals) -> int:
    """``os.kill`` for a PID that must be known: 0 or a negative number would signal a whole group."""
    if pid is None or pid <= 0:
        raise AssertionError(f"refusing to send {sig.name} to PID {pid!r}")
    os.kill(pid, sig)
    return pid


def total_requests(counters: Any) -> int:
    return sum(counters.requests_by_endpoint.values())


@dataclass
class DagRun:
    """One DAG run of an e2e Databricks DAG (task ``etl``), and the waits its test needs."""

    e2e: DatabricksE2E
    dag_id: str
    run_id: str
    # The task's resume record; operators other than submit-run keep it under their own key.
    record_key: str = RECORD_KEY
    # Submit-run DAGs name their runs "e2e <dag run id>"; the others' runs are all the emulator has
    # (each test starts on a reset emulator).
    runs_named: bool = True

    @property
    def airflow(self) -> AirflowDeployment:
        return self.e2e.airflow

    # -- Airflow side -----------------------------------------------------------------------------

    def ti(self) -> dict[str, Any]:
        return self.airflow.rest.task_instance(self.dag_id, self.run_id, TASK_ID)

    def wait_for_state(self, *states: str, timeout_seconds: float = WAIT_SECONDS) -> dict[str, Any]:
        return self.airflow.rest.wait_for_task_state(
            self.dag_id, self.run_id, TASK_ID, states=set(states), timeout_seconds=timeout_seconds
        )

    def wait_for_try(self, try_number: int, *states: str) -> dict[str, Any]:
        """Wait until the task's current try is ``try_number`` and in one of ``states``."""

        def probe() -> dict[str, Any] | None:
            ti = self.ti()
            return ti if ti["try_number"] == try_number and ti["state"] in states else None

        return self.airflow.wait_for(
            f"try {try_number} of {self.run_id} to be {sorted(states)}", probe, timeout_seconds=WAIT_SECONDS
        )

    def wait_for_deferred_and_watched(self) -> dict[str, Any]:
        """Wait until the task is deferred, a triggerer runs its trigger, and it polled at least once.

        After that, the deferring process is long done, so a run may end without hitting Airflow's
        "trigger fires right after deferring" race."""
        ti = self.wait_for_state("deferred")
        job = self.airflow.wait_for(
            "a triggerer to take the trigger",
            lambda: (self.ti().get("triggerer_job") or {}).get("id"),
            timeout_seconds=WAIT_SECONDS,
        )
        self.e2e.wait_for_requests(more_than=total_requests(self.e2e.control.counters()))
        return {**ti, "triggerer_job_id": job}

    def triggerer_job_id(self) -> int | None:
        return (self.ti().get("triggerer_job") or {}).get("id")

    def processes(self) -> TaskProcesses:
        return self.airflow.faults.wait_for_task_processes(
            self.dag_id, self.run_id, TASK_ID, timeout_seconds=WAIT_SECONDS
        )

    def signal_task_process(self, sig: signal.Signals) -> int:
        """Signal the current try's task process (where ``execute()`` runs); return its PID."""
        return signal_pid(self.processes().task_pid, sig)

    def signal_supervisor(self, sig: signal.Signals) -> int:
        """Signal the current try's supervisor (a SIGTERM is forwarded, as on a pod shutdown)."""
        return signal_pid(self.processes().supervisor_pid, sig)

    def tries(self) -> list[tuple[int, str]]:
        return [
            (t["try_number"], t["state"])
            for t in self.airflow.rest.task_tries(self.dag_id, self.run_id, TASK_ID)
        ]

    def xcom(self, key: str) -> Any:
        return self.airflow.rest.xcom(self.dag_id, self.run_id, TASK_ID, key)

    def record(self) -> dict[str, Any] | None:
        value = self.airflow.rest.task_state(self.dag_id, self.run_id, TASK_ID, self.record_key)
        return value if isinstance(value, dict) else None

    def logs(self, try_number: int | None = None) -> str:
        return self.airflow.rest.task_logs(self.dag_id, self.run_id, TASK_ID, try_number)

    # -- gates (tests/e2e/dags/e2e_databricks.py) ---------------------------------------------------

    def wait_for_gate(self, point: str, try_number: int = 1) -> int:
        """Wait until the task paused at ``point`` in ``try_number``; return the task process's PID."""
        reached = self.e2e.gates / self.run_id / f"{point}.try{try_number}.reached"

        def probe() -> int | None:
            return int(reached.read_text()) if reached.exists() else None

        return self.airflow.wait_for(
            f"{self.run_id} to pause at {point}", probe, timeout_seconds=WAIT_SECONDS
        )

    def release_gate(self, point: str) -> None:
        gate = self.e2e.gates / self.run_id
        gate.mkdir(parents=True, exist_ok=True)
        (gate / f"{point}.release").touch()

    # -- Databricks side --------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """The emulator's runs created by this DAG run, oldest first."""
        name = f"e2e {self.run_id}"
        return [run for run in self.e2e.control.runs() if not self.runs_named or run.get("run_name") == name]

    def wait_for_runs(self, count: int) -> list[dict[str, Any]]:
        """Wait until this DAG run created at least ``count`` runs; return them, oldest first."""

        def probe() -> list[dict[str, Any]] | None:
            runs = self.runs()
            return runs if len(runs) >= count else None

        return self.airflow.wait_for(f"{count} run(s) of {self.run_id}", probe, timeout_seconds=WAIT_SECONDS)

    def finish_run(self, run_id: int, *, in_seconds: float = 3.0, result_state: str = "SUCCESS") -> None:
        """Make an active run end ``in_seconds`` from now with ``result_state`` (the workspace's side)."""
        run = self.e2e.control.get_run(run_id)
        elapsed = time.time() - run["start_time"] / 1000
        self.e2e.control.script_run(
            run_id, result_state=result_state, duration_seconds=elapsed + in_seconds, error="scripted"
        )

    def wait_for_run_terminal(self, run_id: int) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            run = self.e2e.control.get_run(run_id)
            return run if run["state"]["life_cycle_state"] in TERMINAL_LIFE_CYCLE_STATES else None

        return self.airflow.wait_for(f"run {run_id} to end", probe, timeout_seconds=WAIT_SECONDS)

    def assert_succeeded_on_one_run(self, run_id: int, *, try_number: int = 1) -> Outcome:
        """The task succeeded in ``try_number`` on the one run ``run_id`` (the XCom names it), nothing
        else was created, none is left active, and nothing sent ``runs/cancel``; the outcome, for more."""
        outcome = self.outcome()
        assert ("success", try_number, ["SUCCESS"], 1, []) == outcome.summary()
        assert (run_id, 0) == (outcome.xcom_run_id, outcome.requests.get("runs/cancel", 0))
        return outcome

    def outcome(self) -> Outcome:
        """What the test asserts on, read once the task reached a final state.

        Runs still TERMINATING (a cancel takes ~0.5 s) are waited for; a run that is still PENDING or
        RUNNING now is an orphan: nothing watches it any more."""
        ti = self.ti()
        deadline = time.monotonic() + 10
        runs = self.runs()
        terminating = [r for r in runs if r["state"]["life_cycle_state"] == "TERMINATING"]
        while terminating and time.monotonic() < deadline:
            time.sleep(0.2)
            runs = self.runs()
            terminating = [r for r in runs if r["state"]["life_cycle_state"] == "TERMINATING"]
        try:
            xcom_run_id = self.xcom("run_id")
        except AirflowApiError as exc:  # no such XCom: the outcome says so, the test's comparison fails on it
            if exc.status != 404:
                raise
            xcom_run_id = None
        counters = self.e2e.control.counters()
        return Outcome(
            state=ti["state"],
            try_number=ti["try_number"],
            run_results=[r["state"].get("result_state") or r["state"]["life_cycle_state"] for r in runs],
            orphaned_runs=[
                r["run_id"] for r in runs if r["state"]["life_cycle_state"] not in TERMINAL_LIFE_CYCLE_STATES
            ],
            runs_submitted=counters.runs_submitted,
            xcom_run_id=xcom_run_id,
            run_ids=[r["run_id"] for r in runs],
            requests=dict(counters.requests_by_endpoint),
        )


@dataclass(frozen=True)
class Outcome:
    """A finished DAG run, as a fault test checks it."""

    state: str
    try_number: int
    run_results: list[str]  # each run of this DAG run, oldest first: its result (or life-cycle) state
    orphaned_runs: list[int]  # runs still active although the task is final
    runs_submitted: int  # runs the emulator created since the test started (all DAG runs)
    xcom_run_id: Any
    run_ids: list[int]
    requests: dict[str, int]

    def summary(self) -> tuple[Any, ...]:
        """(task state, try number, each run's result, runs the emulator created, orphans)."""
        return (self.state, self.try_number, self.run_results, self.runs_submitted, self.orphaned_runs)


class DatabricksE2E:
    """One test's view of the shared Airflow deployment and Databricks emulator process."""

    def __init__(self, airflow: AirflowDeployment, emulator: EmulatorProcess, gates: Path, name: str) -> None:
        self.airflow = airflow
        self.emulator = emulator
        self.gates = gates
        self.name = re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:60]
        self.dag_runs: list[DagRun] = []

    @property
    def control(self) -> Any:
        return self.emulator.control

    def __enter__(self) -> DatabricksE2E:
        self.setup()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.teardown()

    def setup(self) -> None:
        try:
            self.control.counters()
        except ConnectionError:  # an earlier test left the emulator stopped
            self.emulator.stop()
            self.emulator.start()
        self.control.reset()

    def start(
        self,
        dag_id: str,
        *,
        pause: dict[str, list[int]] | None = None,
        record_key: str = RECORD_KEY,
        runs_named: bool = True,
        **conf: Any,
    ) -> DagRun:
        """Trigger a DAG run of ``dag_id`` (waiting for the DAG to be parsed first)."""
        self.airflow.rest.wait_for_dag(dag_id, timeout_seconds=WAIT_SECONDS)
        run_id = f"{self.name}-{os.getpid()}-{next(_counter)}-{int(time.time())}"
        if pause:
            conf["pause"] = pause
        self.airflow.rest.trigger_dag_run(dag_id, run_id, conf=conf)
        dag_run = DagRun(self, dag_id, run_id, record_key=record_key, runs_named=runs_named)
        self.dag_runs.append(dag_run)
        return dag_run

    def wait_for_requests(self, *, more_than: int, endpoint: str | None = None) -> int:
        """Wait until the emulator admitted more than ``more_than`` API requests (of ``endpoint``, or
        of any endpoint); return the new count. Admitted means counted, not necessarily answered:
        a request held by a latency fault counts as soon as it arrived."""

        def probe() -> int | None:
            by_endpoint = self.control.counters().requests_by_endpoint
            count = by_endpoint.get(endpoint, 0) if endpoint else sum(by_endpoint.values())
            return count if count > more_than else None

        what = f"more than {more_than} {endpoint or 'API'} requests at the emulator"
        return self.airflow.wait_for(what, probe, timeout_seconds=WAIT_SECONDS)

    def requests(self, endpoint: str | None = None) -> int:
        by_endpoint = self.control.counters().requests_by_endpoint
        return by_endpoint.get(endpoint, 0) if endpoint else sum(by_endpoint.values())

    def teardown(self) -> None:
        """Leave nothing of this test running: its DAG runs failed, their task processes (orphans
        included) gone, and the emulator quiet (no trigger polls, no late cancels)."""
        self.airflow.ensure_running()
        self.airflow.rest.fail_active_dag_runs()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = self.airflow.faults.task_processes()
            if not left:
                break
            for tp in left:
                if tp.supervisor_pid is None and tp.task_pid is not None:  # an orphan: nobody kills it
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(tp.task_pid, signal.SIGKILL)
            time.sleep(0.2)
        self.wait_until_quiet(seconds=2.0, timeout_seconds=30)

    def wait_until_quiet(self, *, seconds: float, timeout_seconds: float) -> None:
        """Wait until the emulator saw no API request for ``seconds`` (gives up silently)."""
        deadline = time.monotonic() + timeout_seconds
        try:
            last = self.requests()
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                time.sleep(0.2)
                now = self.requests()
                if now != last:
                    last, quiet_since = now, time.monotonic()
                elif time.monotonic() - quiet_since >= seconds:
                    return
        except ConnectionError:
            return

    def diagnostics(self) -> str:
        """Task logs of every try, and the emulator's view of the runs: printed when a test fails."""
        parts = []
        for dag_run in self.dag_runs:
            try:
                for try_number, state in dag_run.tries():
                    parts.append(f"----- {dag_run.dag_id}/{dag_run.run_id} try {try_number} ({state}) -----")
                    parts.append(dag_run.logs(try_number)[-6000:])
                parts.append(f"----- runs of {dag_run.run_id} -----")
                parts.append(json.dumps([(r["run_id"], r["state"]) for r in dag_run.runs()], indent=1))
            except Exception as exc:
                parts.append(f"(could not read diagnostics of {dag_run.run_id}: {exc!r})")
        with contextlib.suppress(Exception):
            parts.append(f"emulator counters: {self.control.counters()}")
        return "\n".join(parts)

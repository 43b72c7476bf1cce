"""Running a plan: the emulator and a real Airflow, the workload, the strikes, the settling, the
history.

::

    emulator process (state file) ── databricks_default ──► AirflowDeployment (single or ha)
         ▲                                                        ▲
         └── Striker: faults, user actions at their moments ──────┘
         └── Observer: request log, task instance states ────────┘ ──► History ──► checker

Moments are kept as well as a shared machine allows: a strike that blocks (a restart waits for
readiness) delays the next one, and the history records when each really happened.
"""

from __future__ import annotations

import heapq
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import resumable_triggers
from resumable_triggers.testing.airflow import PRODUCTION_TOPOLOGY, AirflowApiError, AirflowDeployment
from resumable_triggers.testing.chaos._dags import JOB_NAME, write_dags
from resumable_triggers.testing.chaos._history import FINAL_TI_STATES, ActionEvent, FaultEvent, History
from resumable_triggers.testing.chaos._observe import OUTAGES, Observer
from resumable_triggers.testing.chaos._plan import ActionSpec, DagRunSpec, FaultSpec, Plan
from resumable_triggers.testing.chaos._strike import Recovery, Striker
from resumable_triggers.testing.emulator import EmulatorProcess, airflow_connection

HA_ENV = {"AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10"}
AIRFLOW_ENV = {
    # Four tries at once (the harness's default) keep a shared 2-core machine responsive; deferred
    # tasks hold no slot. A task process imports the DAG file (databricks-sdk included), which
    # takes more than Airflow's 30 s on a loaded machine: the try is then rescheduled, again and again.
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    # The harness's 15 s is shorter than a try's start-up on a loaded machine: the scheduler then
    # fails tries that were only slow to start, and their successors, in a loop.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
    "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
    "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "64",
}
SETTLE_MIN_SECONDS = 120.0


def _create_job(url: str, token: str) -> None:
    body = {
        "name": JOB_NAME,
        "tasks": [
            {
                "task_key": "main",
                "notebook_task": {"notebook_path": "/chaos"},
                "existing_cluster_id": "chaos-cluster",
            }
        ],
    }
    request = urllib.request.Request(
        f"{url}/api/2.1/jobs/create",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


class Campaign:
    """One campaign of ``plan`` in ``workdir`` (a new temporary directory by default)."""

    def __init__(
        self, plan: Plan, *, workdir: Path | None = None, say: Callable[[str], None] | None = None
    ) -> None:
        self.plan = plan
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"chaos-{plan.seed}-"))
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._t0 = time.time()
        self.faults: list[FaultEvent] = []
        self.actions: list[ActionEvent] = []
        self._threads: list[threading.Thread] = []

    def say(self, text: str) -> None:
        self._say(f"[chaos {time.time() - self._t0:6.1f}s] {text}")

    def run(self) -> History:
        dags = self.workdir / "dags"
        write_dags(self.plan, dags)
        with EmulatorProcess(run_seconds=30, state_file=self.workdir / "emulator-state.json") as emulator:
            _create_job(emulator.url, emulator.token)
            ha = self.plan.topology == "ha"
            # Airflow's processes run in its home: a relative PYTHONPATH would make them import
            # another resumable-triggers (an installed one) than the one this campaign judges.
            library = str(Path(resumable_triggers.__file__).resolve().parents[1])
            python_path = os.pathsep.join(p for p in (library, os.environ.get("PYTHONPATH", "")) if p)
            airflow = AirflowDeployment(
                dags_folder=dags,
                connections={"databricks_default": airflow_connection(emulator.url, emulator.token)},
                env={**AIRFLOW_ENV, **(HA_ENV if ha else {}), "PYTHONPATH": python_path},
                home=self.workdir / "airflow-home",
                startup_timeout_seconds=180,
                **(PRODUCTION_TOPOLOGY if ha else {}),
            )
            self.say(f"starting Airflow ({self.plan.topology}) in {self.workdir}")
            with airflow:
                for dag in self.plan.dags:
                    airflow.rest.wait_for_dag(dag.dag_id, timeout_seconds=180)
                observer = Observer(airflow.rest, emulator.control, [d.dag_id for d in self.plan.dags])
                return self._campaign(airflow, emulator, observer)

    def _campaign(self, airflow: AirflowDeployment, emulator: EmulatorProcess, observer: Observer) -> History:
        striker = Striker(airflow, emulator, observer)
        started = self._t0 = time.time()
        observer.start()
        agenda: list[tuple[float, int, Any]] = []
        items: list[DagRunSpec | FaultSpec | ActionSpec] = [
            *self.plan.dag_runs,
            *self.plan.faults,
            *self.plan.actions,
        ]
        for index, item in enumerate(items):
            heapq.heappush(agenda, (started + item.at_seconds, index, item))
        counter = len(agenda)
        self.say(
            f"seed {self.plan.seed}: {len(self.plan.dag_runs)} DAG runs, {len(self.plan.faults)} faults, "
            f"{len(self.plan.actions)} user actions over {self.plan.active_seconds:.0f} s"
        )
        try:
            while agenda:
                at, _, item = heapq.heappop(agenda)
                time.sleep(max(0.0, at - time.time()))
                for event in striker.revive():
                    self.faults.append(event)
                    self.say(f"{event.target} had died by itself: restarted")
                recovery = self._do(item, airflow, striker)
                if recovery is not None:
                    counter += 1
                    heapq.heappush(agenda, (recovery.at, counter, recovery))
            for thread in self._threads:
                thread.join(timeout=180)
            settled = self._settle(airflow, observer, started)
        finally:
            airflow.faults.resume_everything()
            with _quiet():
                emulator.control.set_rate_limit(None, None)
        observer.stop()
        observer.merge_log()
        observer.sample()
        tis = observer.task_instances()
        self.say("reading the history: runs, tries, XComs")
        return History(
            seed=self.plan.seed,
            started=started,
            ended=time.time(),
            requests=tuple(observer.requests),
            runs=tuple(observer.runs()),
            samples=tuple(observer.samples),
            tries=tuple(observer.tries(tis)),
            faults=tuple(self.faults),
            actions=tuple(self.actions),
            xcom_run_ids=observer.xcom_run_ids(tis),
            timeouts={
                f"{dag.dag_id}|{task.task_id}": task.execution_timeout_seconds
                for dag in self.plan.dags
                for task in dag.tasks
                if task.execution_timeout_seconds is not None
            },
            settled=settled,
        )

    def _do(self, item: Any, airflow: AirflowDeployment, striker: Striker) -> Recovery | None:
        if isinstance(item, DagRunSpec | ActionSpec):
            # REST calls go in threads of their own: they wait for an API server that a fault may
            # have frozen, and must not hold back the SIGCONT or restart that ends that fault.
            work = self._trigger if isinstance(item, DagRunSpec) else self._act
            thread = threading.Thread(
                target=work, args=(airflow, striker, item), name="chaos-rest", daemon=True
            )
            thread.start()
            self._threads.append(thread)
            return None
        if isinstance(item, FaultSpec):
            event, recovery = striker.fault(item)
            self.faults.append(event)
            self.say(f"fault {item.kind} {item.target}: {event.detail}")
            return recovery
        assert isinstance(item, Recovery)
        self.say(item.what)
        try:
            item.undo()
        except OUTAGES as exc:
            self.say(f"could not {item.what}: {exc}")
        return None

    def _trigger(self, airflow: AirflowDeployment, striker: Striker, item: DagRunSpec) -> None:
        deadline = time.time() + 120  # the API server may be down for a while (a fault)
        while True:
            try:
                airflow.rest.trigger_dag_run(item.dag_id, item.run_id)
                self.say(f"triggered {item.dag_id} {item.run_id}")
                return
            except AirflowApiError as exc:
                if exc.status == 409:  # an earlier request that got no answer was applied
                    self.say(f"triggered {item.dag_id} {item.run_id} (after no answer)")
                    return
                if (exc.status is not None and exc.status < 500) or time.time() > deadline:
                    self.say(f"could not trigger {item.run_id}: {exc}")
                    return
                time.sleep(1)

    def _act(self, airflow: AirflowDeployment, striker: Striker, item: ActionSpec) -> None:
        action = striker.action(item)
        self.actions.append(action)
        self.say(f"user {item.action} {action.ti}{'' if action.ok else ' FAILED: ' + action.detail}")

    def _settle(self, airflow: AirflowDeployment, observer: Observer, started: float) -> bool:
        """Every component running, then wait until every DAG run is final (no cancels: a run is
        left to end by itself, so that a cancel in the history is always the library's)."""
        restarted = airflow.ensure_running()
        if restarted:
            self.say(f"restarted {restarted}")
        longest = max(t.run_seconds + 15 for d in self.plan.dags for t in d.tasks)
        retries = max(t.retries for d in self.plan.dags for t in d.tasks)
        end = max(started + self.plan.minutes * 60, time.time() + SETTLE_MIN_SECONDS)
        end = max(end, time.time() + longest * (retries + 1))
        wanted = [(r.dag_id, r.run_id) for r in self.plan.dag_runs]
        self.say("settling: waiting for every DAG run to finish")
        while time.time() < end:
            try:
                states = observer.dag_run_states(wanted)
                tis = observer.sample()
            except OUTAGES:
                time.sleep(2)
                continue
            open_runs = [key for key in wanted if states.get(key) not in ("success", "failed")]
            open_tis = [ti for ti in tis if ti.get("state") not in FINAL_TI_STATES]
            if not open_runs and not open_tis:
                self.say("settled")
                return True
            airflow.ensure_running()
            time.sleep(2)
        self.say("did not settle in time")
        return False


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        return exc_type is not None and issubclass(exc_type, OUTAGES)

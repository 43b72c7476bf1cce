"""The demo's story: one nightly run of the example DAG on a real Airflow, struck four times.

1. The worker running ``nightly_etl`` is SIGKILLed right after Databricks created its run, before
   the run id reached the task (the emulator holds its answer to the submit).
2. The worker running ``nightly_etl_in_worker`` (``deferrable=False``) gets SIGTERM while it polls,
   as in a pod eviction or a deploy: the task checkpoints into a deferral.
3. The triggerer watching them and ``nightly_features`` (a notebook task) is SIGKILLed while one of
   its polls is in flight.
4. ``publish_report`` (run-now) follows, and its job's ``publish`` task fails the first time: the
   task repairs the run in place, and only ``publish`` runs again.

Then the invariants are checked from the outside: one Databricks run per task, none left active,
none cancelled, the report's run repaired once, every task successful, and each task's XCom
``run_id`` naming the run that finished.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from resumable_triggers._demo._timeline import Timeline, run_state, sampler, table
from resumable_triggers.testing import EmulatorControl, EmulatorProcess, airflow_connection
from resumable_triggers.testing.airflow import AirflowDeployment, DeploymentError

T = TypeVar("T")

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "example_databricks"
ETL, IN_WORKER, FEATURES, REPORT = (
    "nightly_etl",
    "nightly_etl_in_worker",
    "nightly_features",
    "publish_report",
)
TASKS = (ETL, IN_WORKER, FEATURES, REPORT)
DEFERRED = (ETL, IN_WORKER, FEATURES)  # what the triggerer watches when it is killed
REPORT_JOB = "publish-report"
# The job publish_report runs: ``render``, then ``publish``, which fails its first attempt (the
# emulator's ``fail_attempts``), so the first run fails and its repair re-runs ``publish`` alone.
REPORT_JOB_SETTINGS: dict[str, Any] = {
    "name": REPORT_JOB,
    "tasks": [
        {
            "task_key": "render",
            "notebook_task": {
                "notebook_path": "/jobs/report/render",
                "base_parameters": {"emulator.duration_seconds": "2"},
            },
        },
        {
            "task_key": "publish",
            "depends_on": [{"task_key": "render"}],
            "notebook_task": {
                "notebook_path": "/jobs/report/publish",
                "base_parameters": {
                    "emulator.duration_seconds": "1",
                    "emulator.fail_attempts": "1",
                    "emulator.error": "upload to s3://reports timed out",
                },
            },
        },
    ],
}
WAIT_SECONDS = 60.0
# Runs last this long unless the story ends them: no step of the demo races a run's natural end.
RUN_SECONDS = 600


def task_of_run(run: dict[str, Any]) -> str:
    """Which task of the example DAG created a run (from its name and type)."""
    if run.get("run_type") == "JOB_RUN":
        return REPORT
    if str(run.get("run_name", "")).startswith("nightly etl"):
        return ETL
    if run.get("run_name") in (IN_WORKER, FEATURES):
        return str(run["run_name"])
    return "someone else"


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    ok: bool
    detail: str


class Demo:
    """Sets up the emulator and Airflow, tells the story, checks the invariants; a context manager
    whose exit stops every process it started, whatever happened (Ctrl-C included)."""

    def __init__(self, timeline: Timeline, *, keep_home: bool = False) -> None:
        self.timeline = timeline
        self.keep_home = keep_home
        self._stack = contextlib.ExitStack()
        self.emulator: EmulatorProcess | None = None
        self.airflow: AirflowDeployment | None = None
        self.run_id = ""

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        # A second Ctrl-C (or a SIGTERM) must not interrupt the clean-up that the first one started.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.timeline.stop()
            if self.airflow is not None or self.emulator is not None:
                self.timeline.event("stopping Airflow and the emulator")
            self._stack.close()
            if self.airflow is not None:
                left = self.airflow.processes()
                self.timeline.event(
                    "no process left behind" if not left else f"processes left behind: {left}"
                )
                if self.keep_home:
                    self.timeline.event(f"Airflow home kept at {self.airflow.home}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def control(self) -> EmulatorControl:
        assert self.emulator is not None
        return self.emulator.control

    @property
    def af(self) -> AirflowDeployment:
        assert self.airflow is not None
        return self.airflow

    # -- setting up ---------------------------------------------------------------------------------

    def start(self) -> None:
        say = self.timeline.event
        self.timeline.heading("setting up: a Databricks emulator and Airflow 3.3, nothing to configure")
        self.emulator = self._stack.enter_context(EmulatorProcess(run_seconds=RUN_SECONDS))
        say(f"Databricks Jobs API emulator serving at {self.emulator.url}")
        job_id = self._create_report_job()
        say(f"created the job {REPORT_JOB!r} (id {job_id}) that publish_report runs")
        self.airflow = AirflowDeployment(
            dags_folder=DAGS,
            connections={"databricks_default": airflow_connection(self.emulator.url, self.emulator.token)},
            env={"EXAMPLE_RUN_SECONDS": str(RUN_SECONDS)},
            keep_home=self.keep_home,
        )
        say(f"starting Airflow (api-server, scheduler, dag-processor, triggerer) in {self.airflow.home}")
        self._stack.enter_context(self.airflow)
        say(f"Airflow is up at {self.airflow.base_url}")
        self.af.rest.wait_for_dag(DAG_ID, timeout_seconds=WAIT_SECONDS)
        say(
            f"DAG {DAG_ID} parsed: {ETL} and {FEATURES} (deferred), {IN_WORKER} (polls in the worker) "
            f">> {REPORT} (repairs a failed run)"
        )

    def _create_report_job(self) -> int:
        assert self.emulator is not None
        body = REPORT_JOB_SETTINGS
        request = urllib.request.Request(
            f"{self.emulator.url}/api/2.2/jobs/create",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.emulator.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(json.loads(response.read())["job_id"])

    # -- the story ----------------------------------------------------------------------------------

    def tell(self) -> None:
        say, heading, ctl, af = self.timeline.event, self.timeline.heading, self.control, self.af
        logical_date = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.run_id = f"demo__{logical_date.isoformat()}"

        heading(f"1. the worker running {ETL} is SIGKILLed right after submit")
        # Every submit of the DAG run is held (three tasks submit at once), so whichever order they
        # come in, nightly_etl's answer is among those held when its task is killed.
        ctl.inject_fault(endpoint="runs/submit", kind="hold", count=3)
        say("Databricks will create the next three submitted runs but hold their answers (the run ids)")
        af.rest.trigger_dag_run(DAG_ID, self.run_id, logical_date=logical_date)
        say(f"triggered DAG run {self.run_id}")
        self.timeline.watch(sampler(af, ctl, DAG_ID, self.run_id, TASKS, task_of_run))
        etl_run = self._wait_for_run(ETL)
        worker_run = self._wait_for_run(IN_WORKER)
        say(f"Databricks created run {etl_run} for {ETL}; its answer has not reached the task")
        processes = af.faults.wait_for_task_processes(DAG_ID, self.run_id, ETL, timeout_seconds=WAIT_SECONDS)
        assert processes.task_pid is not None
        os.kill(processes.task_pid, signal.SIGKILL)
        say(f"SIGKILL -> {ETL}'s task process (pid {processes.task_pid}): it dies not knowing its run id")
        self._wait_for_run(FEATURES)
        ctl.release_held()
        say(
            f"held answers released: {IN_WORKER} learns its run id ({worker_run}) and polls from the "
            f"worker; {FEATURES} learns its own and defers"
        )
        self._wait_for_try(ETL, 2, "deferred")
        counters = ctl.counters()
        say(
            f"{ETL} try 2 submitted again with its stored idempotency token and got run {etl_run} back "
            f"({counters.requests_by_endpoint.get('runs/submit', 0)} submit requests, "
            f"{counters.runs_submitted} runs); deferred to the triggerer"
        )

        heading(f"2. SIGTERM while {IN_WORKER} polls in the worker (deferrable=False)")
        self._wait(f"{IN_WORKER} to poll from the worker", lambda: self._polls(worker_run) >= 2 or None)
        processes = af.faults.wait_for_task_processes(
            DAG_ID, self.run_id, IN_WORKER, timeout_seconds=WAIT_SECONDS
        )
        assert processes.supervisor_pid is not None
        os.kill(processes.supervisor_pid, signal.SIGTERM)
        pid = processes.supervisor_pid
        say(f"SIGTERM -> the worker running {IN_WORKER} (pid {pid}), as a pod eviction would")
        self._wait_for_try(IN_WORKER, 1, "deferred")
        say(
            f"checkpoint: the API server still sees {IN_WORKER} running, so this is a shutdown, not a "
            f"user's kill; the same try deferred to the triggerer and run {worker_run} keeps running"
        )

        heading("3. the triggerer is SIGKILLed mid-poll")
        old_jobs = {task: self._wait_for_triggerer(task, not_job=None) for task in DEFERRED}
        before = sum(ctl.counters().requests_by_endpoint.values())
        ctl.inject_fault(endpoint=None, kind="latency", delay_seconds=30, count=1)
        self._wait(
            "a poll in flight", lambda: sum(ctl.counters().requests_by_endpoint.values()) > before or None
        )
        say("a poll is in flight (the emulator delays its answer)")
        triggerer_pid = af.pids()["triggerer"]
        af.faults.kill("triggerer", signal.SIGKILL)
        say(f"SIGKILL -> the triggerer (pid {triggerer_pid}): the three deferred tasks lose their watcher")
        af.restart("triggerer")
        say(f"a new triggerer started (pid {af.pids()['triggerer']})")
        for task in DEFERRED:
            self._wait_for_triggerer(task, not_job=old_jobs[task])
        say("the new triggerer rebuilt the three triggers from their stored kwargs: same runs, no resubmit")

        heading(f"4. the workspace finishes the nightly runs; {REPORT} fails once and is repaired")
        nightly = (etl_run, worker_run, self._wait_for_run(FEATURES))
        for run_id in nightly:
            run = ctl.get_run(run_id)
            elapsed = dt.datetime.now(dt.timezone.utc).timestamp() - run["start_time"] / 1000
            ctl.script_run(run_id, result_state="SUCCESS", duration_seconds=elapsed + 4)
        say(f"runs {', '.join(map(str, nightly))} end in 4 s")
        report_run = self._wait_for_run(REPORT)
        say(f"{REPORT} ran the job {REPORT_JOB!r}: run {report_run}; its publish task fails the first time")
        self._wait(f"run {report_run} to be repaired", lambda: self._repairs(report_run) or None)
        say(
            f"run {report_run} failed in publish (render had succeeded); {REPORT} repaired it in place: "
            "publish alone runs again, on the same run id"
        )
        af.rest.wait_for_dag_run_state(DAG_ID, self.run_id, states={"success"}, timeout_seconds=120)
        self.timeline.stop()
        self.timeline.sample_now(sampler(af, ctl, DAG_ID, self.run_id, TASKS, task_of_run))
        say(f"DAG run {self.run_id} succeeded")

    # -- results ------------------------------------------------------------------------------------

    def results(self) -> tuple[str, list[Check]]:
        """The summary table, and every invariant with whether it held."""
        af, ctl = self.af, self.control
        runs = ctl.runs()
        runs_of = {task: [r for r in runs if task_of_run(r) == task] for task in TASKS}
        tis = {task: af.rest.task_instance(DAG_ID, self.run_id, task) for task in TASKS}

        def row(scenario: str, task: str) -> tuple[str, ...]:
            ti = tis[task]
            return (scenario, task, str(ti["try_number"]), str(len(runs_of[task])), str(ti["state"]))

        rows = [
            row("worker SIGKILLed right after submit", ETL),
            row("SIGTERM while polling -> checkpoint", IN_WORKER),
            row("triggerer SIGKILLed mid-poll", ETL),
            row("", IN_WORKER),
            row("", FEATURES),
            row("publish fails once -> repaired in place", REPORT),
        ]
        summary = table(("scenario", "task", "attempts", "runs submitted", "final state"), rows)

        counters = ctl.counters()
        active = [r["run_id"] for r in runs if r["state"]["life_cycle_state"] != "TERMINATED"]
        checks = [
            Check(
                "exactly one Databricks run per task (one logical attempt each)",
                all(len(runs_of[t]) == 1 for t in TASKS) and counters.runs_submitted == len(TASKS),
                f"runs per task {[len(runs_of[t]) for t in TASKS]}, created {counters.runs_submitted}",
            ),
            Check(
                "every task succeeded",
                all(tis[t]["state"] == "success" for t in TASKS),
                str({t: tis[t]["state"] for t in TASKS}),
            ),
            Check(
                f"the SIGTERM became a checkpoint: {IN_WORKER} finished in the try it was in",
                tis[IN_WORKER]["try_number"] == 1,
                f"it took {tis[IN_WORKER]['try_number']} tries",
            ),
            Check(
                f"{REPORT}'s failed run was repaired once, in place (no second run-now)",
                len(runs_of[REPORT]) == 1
                and len(self._repairs(runs_of[REPORT][0]["run_id"])) == 1
                and counters.requests_by_endpoint.get("run-now", 0) == 1,
                f"repairs {[self._repairs(r['run_id']) for r in runs_of[REPORT]]}, "
                f"run-now requests {counters.requests_by_endpoint.get('run-now', 0)}",
            ),
            Check("no run left active with nobody watching it", not active, f"active: {active}"),
            Check(
                "no healthy run was cancelled",
                counters.requests_by_endpoint.get("runs/cancel", 0) == 0
                and all(run_state(r) == "SUCCESS" for r in runs),
                str({task_of_run(r): run_state(r) for r in runs}),
            ),
        ]
        for task in TASKS:
            expected = runs_of[task][-1]["run_id"] if runs_of[task] else None
            try:
                pushed = af.rest.xcom(DAG_ID, self.run_id, task, "run_id")
            except DeploymentError:
                pushed = None
            checks.append(
                Check(f"{task}: XCom run_id is the run that finished", pushed == expected, f"{pushed}")
            )
        return summary, checks

    # -- waits --------------------------------------------------------------------------------------

    def _wait(self, what: str, probe: Callable[[], T | None]) -> T:
        return self.af.wait_for(what, probe, timeout_seconds=WAIT_SECONDS)

    def _wait_for_run(self, task: str) -> int:
        def probe() -> int | None:
            return next((r["run_id"] for r in self.control.runs() if task_of_run(r) == task), None)

        return self._wait(f"a Databricks run of {task}", probe)

    def _wait_for_try(self, task: str, try_number: int, state: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            ti = self.af.rest.task_instance(DAG_ID, self.run_id, task)
            if ti["state"] in ("failed", "upstream_failed"):
                raise DeploymentError(f"{task} ended {ti['state']} in try {ti['try_number']}")
            return ti if (ti["try_number"], ti["state"]) == (try_number, state) else None

        return self._wait(f"{task} try {try_number} to be {state}", probe)

    def _wait_for_triggerer(self, task: str, *, not_job: int | None) -> int:
        def probe() -> int | None:
            ti = self.af.rest.task_instance(DAG_ID, self.run_id, task)
            job = (ti.get("triggerer_job") or {}).get("id")
            return job if ti["state"] == "deferred" and job not in (None, not_job) else None

        return self._wait(f"a triggerer to watch {task}", probe)

    def _repairs(self, run_id: int) -> list[int]:
        """The repair ids the workspace accepted on ``run_id``."""
        history = self.control.get_run(run_id).get("repair_history", ())
        return [entry["id"] for entry in history if entry.get("type") == "REPAIR"]

    def _polls(self, run_id: int) -> int:
        return sum(1 for r in self.control.request_log if r.endpoint == "runs/get" and r.run_id == run_id)

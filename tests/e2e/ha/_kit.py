"""Waits and readings the HA tests share: who holds a trigger, heartbeats, a trigger's own log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from e2e_testkit import WAIT_SECONDS, DagRun

from resumable_triggers.testing.airflow import AirflowDeployment

DEFERRED = "e2e_dbx_deferred"
IN_WORKER = "e2e_dbx_in_worker"
PATIENT = "e2e_dbx_patient"
BUDGET = "e2e_dbx_budget"
TRIGGERERS = ("triggerer[0]", "triggerer[1]")
T = TypeVar("T")


def holder_of(dag_run: DagRun) -> tuple[int, str]:
    """The triggerer job watching the DAG run's task, and the component that runs it."""
    job = dag_run.airflow.wait_for("a triggerer to take the trigger", dag_run.triggerer_job_id)
    return job, dag_run.airflow.faults.component_of_job(job)


def taken_over(dag_run: DagRun, old_job: int) -> int:
    """Wait until another triggerer job holds the task's trigger; return it."""

    def probe() -> int | None:
        job = dag_run.triggerer_job_id()
        return job if job not in (None, old_job) else None

    return dag_run.airflow.wait_for("another triggerer to take the trigger over", probe, timeout_seconds=90)


def latest_heartbeat(airflow: AirflowDeployment, component: str) -> float | None:
    """Epoch seconds of the newest heartbeat of ``component``'s running triggerer job, if any."""
    running = {"job_type": "TriggererJob", "job_state": "running"}
    jobs = airflow.rest.api("GET", "/jobs", params=running)["jobs"]
    beats = [
        dt.datetime.fromisoformat(job["latest_heartbeat"]).timestamp()
        for job in jobs
        if job.get("latest_heartbeat") and airflow.faults.component_of_job(job["id"]) == component
    ]
    return max(beats, default=None)


def heartbeat_after(airflow: AirflowDeployment, component: str, moment: float) -> None:
    """Wait until ``component``'s job heartbeats again after ``moment`` (epoch seconds): a woken
    triggerer has then been through its loop, where it cancels the triggers it lost."""

    def probe() -> bool | None:
        beat = latest_heartbeat(airflow, component)
        return True if beat is not None and beat > moment + 1 else None

    airflow.wait_for(f"{component} to heartbeat after waking", probe, timeout_seconds=60)


def trigger_logs(dag_run: DagRun, job: int) -> str:
    """What the trigger wrote in triggerer job ``job`` (Airflow's log file for it, on this machine)."""
    folder = dag_run.airflow.home / "logs" / f"dag_id={dag_run.dag_id}" / f"run_id={dag_run.run_id}"
    return "".join(path.read_text(errors="replace") for path in folder.rglob(f"*.log.trigger.{job}.log"))


def restarting_the_dead(airflow: AirflowDeployment, what: str, probe: Callable[[], T | None]) -> T:
    """Wait for ``probe`` as ``wait_for`` does, restarting every component that died meanwhile, as an
    orchestrator would: a database restart kills a scheduler at its next query, seconds later, so one
    ``ensure_running`` right after the fault can come too early."""

    def step() -> T | None:
        airflow.ensure_running()
        return probe()

    return airflow.wait_for(what, step, timeout_seconds=WAIT_SECONDS)

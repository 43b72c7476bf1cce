"""Smoke tests of the deployment harness against a real Airflow: runs, deferral, kills, cleanup."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from resumable_triggers.testing.airflow import AirflowDeployment

pytestmark = pytest.mark.e2e


def test_python_task_runs_to_success(airflow: AirflowDeployment) -> None:
    """A PythonOperator DAG run succeeds and sees the deployment's connections; its return value
    reaches XCom and its printed line the task log."""
    airflow.rest.wait_for_dag("e2e_smoke_python")
    run_id = airflow.rest.trigger_dag_run("e2e_smoke_python")

    airflow.rest.wait_for_dag_run_state("e2e_smoke_python", run_id, states={"success"})

    expected = {"greeting": "hello", "connection_host": "connection-from-the-harness.invalid"}
    assert expected == airflow.rest.xcom("e2e_smoke_python", run_id, "greet")
    assert "hello from the task process" in airflow.rest.task_logs("e2e_smoke_python", run_id, "greet")


def test_deferred_task_completes_through_the_triggerer(airflow: AirflowDeployment) -> None:
    """A deferrable sensor defers, a triggerer runs its trigger, and the task resumes to success."""
    airflow.rest.wait_for_dag("e2e_smoke_deferrable")
    run_id = airflow.rest.trigger_dag_run("e2e_smoke_deferrable")

    deferred = airflow.rest.wait_for_task_state("e2e_smoke_deferrable", run_id, "wait", states={"deferred"})
    done = airflow.rest.wait_for_task_state("e2e_smoke_deferrable", run_id, "wait", states={"success"})

    assert "airflow.providers.standard.triggers.temporal.DateTimeTrigger" == deferred["trigger"]["classpath"]
    assert 1 == done["try_number"]


@pytest.mark.timeout(150)
def test_deferred_task_survives_triggerer_sigkill(airflow: AirflowDeployment) -> None:
    """SIGKILL of the triggerer while a task is deferred: a restarted triggerer takes the trigger over
    and the task succeeds in its first try."""
    airflow.rest.wait_for_dag("e2e_smoke_deferrable")
    run_id = airflow.rest.trigger_dag_run("e2e_smoke_deferrable")

    def assigned_job(not_job: int | None) -> int | None:
        job = airflow.rest.task_instance("e2e_smoke_deferrable", run_id, "wait").get("triggerer_job") or {}
        return job.get("id") if job.get("id") not in (None, not_job) else None

    old_job = airflow.wait_for("a triggerer to take the trigger", lambda: assigned_job(None))
    airflow.faults.kill("triggerer", signal.SIGKILL)
    airflow.restart("triggerer")
    new_job = airflow.wait_for("the new triggerer to take the trigger over", lambda: assigned_job(old_job))
    done = airflow.rest.wait_for_task_state("e2e_smoke_deferrable", run_id, "wait", states={"success"})

    assert old_job != new_job
    assert 1 == done["try_number"]


def test_sigkilled_task_process_is_retried(airflow: AirflowDeployment) -> None:
    """SIGKILL of a running task's task process, as ``task_processes`` finds it (a child of the
    supervisor, the PID Airflow records for the try), fails that try; the retry succeeds."""
    airflow.rest.wait_for_dag("e2e_smoke_retry")
    run_id = airflow.rest.trigger_dag_run("e2e_smoke_retry")
    airflow.rest.wait_for_task_state("e2e_smoke_retry", run_id, "block", states={"running"})

    found = airflow.faults.wait_for_task_processes("e2e_smoke_retry", run_id, "block")
    running = airflow.rest.task_instance("e2e_smoke_retry", run_id, "block")
    assert found.task_pid is not None
    assert found.task_started
    assert found.supervisor_pid == psutil.Process(found.task_pid).ppid()
    os.kill(found.task_pid, signal.SIGKILL)
    done = airflow.rest.wait_for_task_state("e2e_smoke_retry", run_id, "block", states={"success"})

    assert (running["id"], running["pid"]) == (found.ti_id, found.task_pid)
    tries = airflow.rest.task_tries("e2e_smoke_retry", run_id, "block")
    assert [(1, "failed", found.task_pid), (2, "success")] == [
        (tries[0]["try_number"], tries[0]["state"], tries[0]["pid"]),
        (tries[1]["try_number"], tries[1]["state"]),
    ]
    assert 2 == done["try_number"] == airflow.rest.xcom("e2e_smoke_retry", run_id, "block")


@pytest.mark.timeout(150)
def test_running_task_is_retried_after_scheduler_tree_sigkill(airflow: AirflowDeployment) -> None:
    """SIGKILL of the scheduler with its LocalExecutor workers while a task runs: the restarted
    scheduler fails the lost try once its heartbeat times out, and the retry succeeds."""
    airflow.rest.wait_for_dag("e2e_smoke_retry")
    run_id = airflow.rest.trigger_dag_run("e2e_smoke_retry")
    lost = airflow.faults.wait_for_task_processes("e2e_smoke_retry", run_id, "block")

    airflow.faults.kill("scheduler", signal.SIGKILL, whole_tree=True)
    airflow.restart("scheduler")
    done = airflow.rest.wait_for_task_state("e2e_smoke_retry", run_id, "block", states={"success"})

    assert [] == [p for p in airflow.processes() if p.pid in (lost.supervisor_pid, lost.task_pid)]
    assert 2 == done["try_number"]


def test_stop_ends_orphans_of_sigkilled_scheduler_and_triggerer(tmp_path: Path) -> None:
    """After SIGKILLs of the scheduler and the triggerer left orphans behind (their serve-logs children,
    idle LocalExecutor workers), ``stop()`` still ends every process the deployment started."""
    with AirflowDeployment(dags_folder=tmp_path, components=("api-server", "scheduler", "triggerer")) as af:
        af.faults.kill("scheduler", signal.SIGKILL)
        af.faults.kill("triggerer", signal.SIGKILL)
        orphans = [p for p in af.processes() if p.role != "main"]
        snapshot = [psutil.Process(p.pid) for p in af.processes()]

    assert {"serve-logs", "idle-worker"} <= {p.role for p in orphans}
    assert [] == [p for p in snapshot if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert [] == af.processes()

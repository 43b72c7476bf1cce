"""The one-task operators and repair on a real Airflow: killed at their worst moments, still one run.

DAGs: ``tests/e2e/dags/e2e_surface.py``. Each test checks from the outside, as the fault matrix does:
the task's final state and try, the runs the emulator created and how they ended, each run's repair
history (what the workspace accepted, not what we logged), the requests that reached it, and the
XCom ``run_id``.
"""

from __future__ import annotations

import signal

import psutil
import pytest
from e2e_testkit import DagRun, DatabricksE2E, signal_pid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPAIR_JOB = "e2e-repair"
RUN_NOW = "resumable_triggers.databricks_run_now"


def create_repair_job(dbx: DatabricksE2E) -> int:
    """The job ``e2e-repair``: ``ingest`` then ``publish``, each lasting 600 s unless a test ends it."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import NotebookTask, Task, TaskDependency

    slow = {"emulator.duration_seconds": "600"}
    workspace = WorkspaceClient(host=dbx.emulator.url, token=dbx.emulator.token)
    job = workspace.jobs.create(
        name=REPAIR_JOB,
        tasks=[
            Task(task_key="ingest", notebook_task=NotebookTask("/jobs/ingest", base_parameters=slow)),
            Task(
                task_key="publish",
                depends_on=[TaskDependency("ingest")],
                notebook_task=NotebookTask("/jobs/publish", base_parameters=slow),
            ),
        ],
    )
    assert job.job_id is not None
    return job.job_id


def accepted_repairs(dag_run: DagRun, run_id: int) -> list[int]:
    """The repair ids the workspace accepted on ``run_id``, oldest first."""
    run = dag_run.e2e.control.get_run(run_id)
    return [entry["id"] for entry in run.get("repair_history", ()) if entry["type"] == "REPAIR"]


def fail_run(dag_run: DagRun, run_id: int) -> None:
    dag_run.e2e.control.finish_run(run_id, result_state="FAILED", error="disk full on /local_disk0")


@pytest.mark.parametrize(
    ("dag_id", "record_key"),
    [
        ("e2e_dbx_notebook", "resumable_triggers.databricks_notebook"),
        ("e2e_dbx_task", "resumable_triggers.databricks_task"),
    ],
)
def test_one_task_operator_worker_sigkilled_right_after_submit_gets_the_same_run_back(
    dag_id: str, record_key: str, dbx: DatabricksE2E
) -> None:
    """SIGKILL of the task process right after ``runs/submit`` answered, before the record named the
    run: the retry submits again with the stored idempotency token and gets the same run back (the
    provider's operator would submit a second run)."""
    dag_run = dbx.start(dag_id, pause={"after_submit": [1]}, record_key=record_key, runs_named=False)
    pid = dag_run.wait_for_gate("after_submit")
    [run] = dag_run.runs()
    record = dag_run.record() or {}
    assert (True, None) == (bool(record.get("token")), record.get("external_id"))

    signal_pid(pid, signal.SIGKILL)
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.assert_succeeded_on_one_run(run["run_id"], try_number=2)
    assert 2 == outcome.requests["runs/submit"]
    assert run["run_id"] == (dag_run.record() or {}).get("external_id")
    assert (dag_run.xcom("run_page_url") or "").endswith(f"/run/{run['run_id']}")


def test_worker_sigkilled_after_the_repair_was_accepted_reconnects_to_the_repaired_run(
    dbx: DatabricksE2E,
) -> None:
    """The run fails; the resumed task repairs it, and is SIGKILLed right after ``runs/repair`` was
    accepted, before it deferred again. The retry finds the run running again, settles the pending
    repair as accepted and reconnects: one run, one repair, no second run-now."""
    create_repair_job(dbx)
    dag_run = dbx.start("e2e_dbx_repair", pause={"after_repair": [1]}, record_key=RUN_NOW, runs_named=False)
    [run] = dag_run.wait_for_runs(1)
    dag_run.wait_for_deferred_and_watched()
    fail_run(dag_run, run["run_id"])
    pid = dag_run.wait_for_gate("after_repair")
    assert {"after": None, "number": 1} == (dag_run.record() or {}).get("repair_intent")

    signal_pid(pid, signal.SIGKILL)
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.assert_succeeded_on_one_run(run["run_id"], try_number=2)
    assert (1, 1, 1) == (
        len(accepted_repairs(dag_run, run["run_id"])),
        outcome.requests["runs/repair"],
        outcome.requests["run-now"],
    )
    assert None is (dag_run.record() or {}).get("repair_intent")
    assert "resume decision: reconnect" in dag_run.logs(2)


def test_two_overlapping_tries_repair_the_run_once(dbx: DatabricksE2E) -> None:
    """Try 1 (polling in the worker) finds the run failed, stores its repair intent and freezes just
    before ``runs/repair`` (SIGSTOP of it and its supervisor) until the scheduler gives it up. Try 2
    repairs the run. The zombie then wakes and sends its own repair, based on the history it read
    before try 2's: the ``latest_repair_id`` check refuses it. One repair, on the one run."""
    create_repair_job(dbx)
    dag_run = dbx.start(
        "e2e_dbx_repair_in_worker", pause={"before_repair": [1]}, record_key=RUN_NOW, runs_named=False
    )
    [run] = dag_run.wait_for_runs(1)
    dbx.airflow.wait_for("the record to name the run", lambda: (dag_run.record() or {}).get("external_id"))
    fail_run(dag_run, run["run_id"])
    dag_run.wait_for_gate("before_repair")
    zombie = dag_run.processes()
    frozen = [signal_pid(pid, signal.SIGSTOP) for pid in (zombie.task_pid, zombie.supervisor_pid)]
    try:
        dag_run.wait_for_try(2, "running")
        dbx.airflow.wait_for(
            "try 2 to repair the run", lambda: accepted_repairs(dag_run, run["run_id"]) or None
        )
        dag_run.release_gate("before_repair")  # the zombie sends its repair the moment it wakes
    finally:
        for pid in frozen:
            signal_pid(pid, signal.SIGCONT)
    # The zombie's task process exits (its supervisor learns the try is no longer current); the
    # supervisor itself may live on, as an idle LocalExecutor worker.
    if psutil.pid_exists(zombie.task_pid or 0):
        _, alive = psutil.wait_procs([psutil.Process(zombie.task_pid)], timeout=60)
        assert [] == alive
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.assert_succeeded_on_one_run(run["run_id"], try_number=2)
    assert 1 == len(accepted_repairs(dag_run, run["run_id"]))
    sent = outcome.requests["runs/repair"]
    # The zombie may be stopped by its supervisor before it sends; if it sent, it was refused.
    assert sent in (1, 2)
    if sent == 2:
        assert "repaired by an overlapping try" in dag_run.logs(1)

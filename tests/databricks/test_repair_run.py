"""``repair_run`` through real Airflow task execution (``dag.test()``) against the emulator.

What is asserted is the workspace's side: how many runs exist, each run's repair history (one
ORIGINAL attempt, then the repairs the workspace accepted) and how many ``runs/repair`` requests
arrived, so "repaired in place, exactly once" is not taken from our own bookkeeping.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_operators import run_dag, xcom

from resumable_triggers.testing import EmulatorHandle

pytestmark = pytest.mark.timeout(120)

RECORD_KEY = "resumable_triggers.databricks_run_now"


def create_job(env: EmulatorHandle, name: str = "repair-etl", **publish: str) -> int:
    """A two-task job: ``ingest`` then ``publish`` (whose notebook parameters are ``publish``)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import NotebookTask, Task, TaskDependency

    workspace = WorkspaceClient(host=env.url, token=env.token)
    fast = {"emulator.duration_seconds": "0.3"}
    job = workspace.jobs.create(
        name=name,
        tasks=[
            Task(task_key="ingest", notebook_task=NotebookTask("/jobs/ingest", base_parameters=fast)),
            Task(
                task_key="publish",
                depends_on=[TaskDependency("ingest")],
                notebook_task=NotebookTask("/jobs/publish", base_parameters={**fast, **publish}),
            ),
        ],
    )
    assert job.job_id is not None
    return job.job_id


def repairs_of(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in run.get("repair_history", ()) if entry["type"] == "REPAIR"]


@pytest.mark.parametrize("dag_id", ["dbx_repair", "dbx_repair_in_worker"])
def test_failed_run_is_repaired_in_place_and_the_task_succeeds(
    dag_id: str, dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """Deferred or polled in the worker: the failed run is repaired once on the same run id (every
    task re-runs that failed), the repaired run succeeds, and the try that saw the failure succeeds."""
    emulator = databricks_emulator_env.emulator
    create_job(databricks_emulator_env)
    state, store, tries = run_dag(dagbag, dag_id)
    [run] = emulator.runs()
    assert ("success", 1, 1) == (state, tries, emulator.counters().runs_submitted)
    assert ("SUCCESS", 1, 1) == (
        run["state"]["result_state"],
        len(repairs_of(run)),
        emulator.counters().requests_by_endpoint.get("runs/repair", 0),
    )
    assert run["run_id"] == xcom(dag_id, "run_id") == store[RECORD_KEY]["external_id"]
    assert (None, 2) == (store[RECORD_KEY]["repair_intent"], store[RECORD_KEY]["version"])


@pytest.mark.parametrize(
    ("dag_id", "repair_requests"),
    [("dbx_repair_crash_before_sent", 1), ("dbx_repair_crash_after_accepted", 1)],
)
def test_worker_killed_inside_the_repair_repairs_exactly_once(
    dag_id: str, repair_requests: int, dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """Try 1 dies after storing its repair intent: before runs/repair was sent, try 2 finds the
    history as the intent saw it and sends the repair itself; after it was accepted, try 2 finds the
    run repaired and reconnects. Either way: one run, one repair, no fresh run-now."""
    emulator = databricks_emulator_env.emulator
    create_job(databricks_emulator_env)
    state, store, tries = run_dag(dagbag, dag_id)
    [run] = emulator.runs()
    assert ("success", 2, 1) == (state, tries, emulator.counters().runs_submitted)
    assert (1, repair_requests) == (
        len(repairs_of(run)),
        emulator.counters().requests_by_endpoint.get("runs/repair", 0),
    )
    assert None is store[RECORD_KEY]["repair_intent"]
    assert run["run_id"] == xcom(dag_id, "run_id")


def test_run_that_fails_after_its_repairs_is_replaced_by_the_retry(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """A run that fails again once its one repair is spent fails the try; the retry finds no repair
    left and starts a fresh run (a new generation), which gets its own repair."""
    emulator = databricks_emulator_env.emulator
    create_job(databricks_emulator_env, "always-fails", **{"emulator.result_state": "FAILED"})
    state, store, tries = run_dag(dagbag, "dbx_repair_spent")
    runs = emulator.runs()
    assert ("failed", 2, 2) == (state, tries, emulator.counters().runs_submitted)
    assert [1, 1] == [len(repairs_of(run)) for run in runs]
    assert 1 == store[RECORD_KEY]["generation"]


def test_failure_whose_message_names_no_repair_reason_is_not_repaired(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """With ``databricks_repair_reason_new_settings``, a failure whose state message names none of
    its reasons is left as it is, as in the provider: no repair, no jobs/update."""
    emulator = databricks_emulator_env.emulator
    create_job(databricks_emulator_env)
    state, _, _ = run_dag(dagbag, "dbx_repair_reason_differs")
    [run] = emulator.runs()
    assert ("failed", [], 0) == (
        state,
        repairs_of(run),
        emulator.counters().requests_by_endpoint.get("runs/repair", 0),
    )
    assert 0 == emulator.counters().requests_by_endpoint.get("jobs/update", 0)


def test_run_cancelled_at_the_workspace_is_not_repaired(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """A person's cancel is deliberate: the run is not repaired; the retry replaces it instead."""
    emulator = databricks_emulator_env.emulator
    create_job(databricks_emulator_env)
    state, _, tries = run_dag(dagbag, "dbx_repair_cancelled")
    first, second = emulator.runs()
    assert ("success", 2, 0) == (state, tries, emulator.counters().requests_by_endpoint.get("runs/repair", 0))
    assert (["CANCELED", "SUCCESS"], []) == (
        [first["state"]["result_state"], second["state"]["result_state"]],
        repairs_of(first),
    )


def test_failure_whose_message_names_a_repair_reason_updates_the_job_then_repairs(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """The failure's state message names the reason "disk full": the job's settings are updated with
    that reason's (jobs/update, as the provider does) before the one repair, and the task succeeds."""
    from databricks.sdk import WorkspaceClient

    emulator = databricks_emulator_env.emulator
    job_id = create_job(databricks_emulator_env)
    state, _, _ = run_dag(dagbag, "dbx_repair_reason_matches")
    [run] = emulator.runs()
    requests = emulator.counters().requests_by_endpoint
    assert ("success", 1, 1, 1) == (
        state,
        len(repairs_of(run)),
        requests.get("jobs/update"),
        requests.get("runs/repair"),
    )
    workspace = WorkspaceClient(host=databricks_emulator_env.url, token=databricks_emulator_env.token)
    settings = workspace.jobs.get(job_id).settings
    assert settings is not None
    assert (3, ["ingest", "publish"]) == (
        settings.max_concurrent_runs,
        [t.task_key for t in settings.tasks or ()],
    )

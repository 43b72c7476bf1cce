"""The seed's resume contract, run through real Airflow task execution (``dag.test()``).

Each DAG kills its first try at one point; the assertions count jobs actually started (one folder per
job in the detached-command example's job root) and read the task state store back from the database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(90)


def run_dag(dagbag: Any, dag_id: str) -> tuple[str, dict[str, Any], list[Path]]:
    """Run one DAG; return its final state, the task's state store and the job folders it started."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session

    dag_run = dagbag.get_dag(dag_id).test()
    with create_session() as session:
        rows = session.query(TaskStateStoreModel).filter_by(dag_id=dag_id, run_id=dag_run.run_id).all()
        store = {row.key: json.loads(row.value) for row in rows}
    root = Path(os.environ["AIRFLOW_HOME"]) / "detached-jobs" / dag_id
    jobs = sorted(p for p in root.iterdir() if p.is_dir())
    return str(dag_run.state), store, jobs


def tries(dagbag: Any, dag_id: str) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, task_id="job").one()
        return int(ti.try_number)


def job_state(job: Path) -> str:
    return (job / "state").read_text()


def test_first_attempt_submits_once_persists_and_succeeds(dagbag: Any) -> None:
    """The happy path: one job, the record names it and notes the reported success."""
    state, store, jobs = run_dag(dagbag, "resume_none")
    record = store["detached_command"]
    assert ("success", 1, "SUCCEEDED") == (state, len(jobs), job_state(jobs[0]))
    assert (jobs[0].name, True, 0) == (
        record["external_id"],
        record["success_reported"],
        record["generation"],
    )


def test_worker_killed_after_submit_reuses_the_token_and_the_job(dagbag: Any) -> None:
    """Submit succeeded but the id was never persisted: the retry's submit with the same token gets
    the same job back instead of starting a second one."""
    state, store, jobs = run_dag(dagbag, "resume_crash_after_submit")
    assert ("success", 1) == (state, len(jobs))
    assert 2 == tries(dagbag, "resume_crash_after_submit")
    assert jobs[0].name == store["detached_command"]["external_id"]


def test_worker_killed_after_persist_reconnects_without_submitting(dagbag: Any) -> None:
    """The id was persisted but the task died before deferring: the retry reconnects to the job."""
    state, _, jobs = run_dag(dagbag, "resume_crash_after_persist")
    assert ("success", 1, "SUCCEEDED") == (state, len(jobs), job_state(jobs[0]))
    assert 2 == tries(dagbag, "resume_crash_after_persist")


def test_worker_killed_in_completion_finishes_without_resubmitting(dagbag: Any) -> None:
    """The job succeeded but the completion died: the retry sees the success and just finishes."""
    state, _, jobs = run_dag(dagbag, "resume_crash_in_completion")
    assert ("success", 1) == (state, len(jobs))
    assert 2 == tries(dagbag, "resume_crash_in_completion")


def test_sigterm_before_defer_checkpoints_without_cancelling(dagbag: Any) -> None:
    """A worker shutdown (SIGTERM while the API server still sees the task running) re-enters the
    deferral with the stored job: same try, no cancel, no second job."""
    state, _, jobs = run_dag(dagbag, "resume_sigterm_before_defer")
    assert ("success", 1, "SUCCEEDED") == (state, len(jobs), job_state(jobs[0]))
    assert 1 == tries(dagbag, "resume_sigterm_before_defer")


def test_sigterm_while_polling_in_worker_hands_the_job_to_the_triggerer(dagbag: Any) -> None:
    """With deferrable=False, a SIGTERM during the worker's poll defers instead of cancelling."""
    state, _, jobs = run_dag(dagbag, "resume_sigterm_while_polling")
    assert ("success", 1, "SUCCEEDED") == (state, len(jobs), job_state(jobs[0]))
    assert 1 == tries(dagbag, "resume_sigterm_while_polling")


def test_worker_side_polling_follows_the_same_rules(dagbag: Any) -> None:
    """deferrable=False polls in the worker and records the job exactly like the deferrable path."""
    state, store, jobs = run_dag(dagbag, "resume_none_in_worker")
    assert ("success", 1) == (state, len(jobs))
    assert jobs[0].name == store["detached_command"]["external_id"]


def test_failed_job_is_retried_with_a_new_generation(dagbag: Any) -> None:
    """A job that failed is never adopted again: the retry submits generation 1 with a new token."""
    state, store, jobs = run_dag(dagbag, "resume_fails_once")
    record = store["detached_command"]
    assert ("success", 2) == (state, len(jobs))
    assert ["FAILED", "SUCCEEDED"] == sorted(job_state(j) for j in jobs)
    assert (1, True) == (record["generation"], record["success_reported"])
    assert record["token"].endswith("-g1")


def test_foreign_record_is_quarantined_and_a_fresh_job_submitted(dagbag: Any) -> None:
    """A value someone else wrote under our key is kept aside (not lost), logged, and the task goes on
    with a fresh job rather than crashing on every retry."""
    state, store, jobs = run_dag(dagbag, "resume_foreign_record_then_crash")
    assert ("success", 2) == (state, len(jobs))
    assert {"raw": {"written_by": "someone else"}} == store["detached_command.quarantined"]


def test_record_from_a_newer_library_fails_the_task_without_retrying(dagbag: Any) -> None:
    """A record of an unknown newer version is not guessed at: the task fails once, with no retry loop,
    and no second job is started."""
    state, _, jobs = run_dag(dagbag, "resume_newer_record_then_crash")
    assert ("failed", 1) == (state, len(jobs))
    assert 2 == tries(dagbag, "resume_newer_record_then_crash")

"""The Databricks operators through real Airflow task execution (``dag.test()``) against the emulator.

Each test gets a fresh emulator; its counters say how many runs were really created, so "exactly one
run per logical attempt" is asserted from the workspace's side, not from our own bookkeeping.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from resumable_triggers.testing import EmulatorHandle

pytestmark = pytest.mark.timeout(90)


def run_dag(dagbag: Any, dag_id: str) -> tuple[str, dict[str, Any], int]:
    """Run one DAG; return its final state, the task's state store and the task's try number."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    dag_run = dagbag.get_dag(dag_id).test()
    with create_session() as session:
        rows = session.query(TaskStateStoreModel).filter_by(dag_id=dag_id, run_id=dag_run.run_id).all()
        store = {row.key: json.loads(row.value) for row in rows}
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=dag_run.run_id).one()
        return str(dag_run.state), store, int(ti.try_number)


def xcom(dag_id: str, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        # The latest run of this DAG: a DAG may have run earlier in the session.
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, key=key)
            .order_by(XComModel.timestamp.desc())
            .first()
        )
        return None if row is None else XComModel.deserialize_value(row)


RECORD_KEY = "resumable_triggers.databricks_submit_run"


def test_first_attempt_submits_once_and_pushes_run_id_and_url(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """One run is created, its id and page URL become XComs, and the record notes the success."""
    emulator = databricks_emulator_env.emulator
    state, store, tries = run_dag(dagbag, "dbx_none")
    [run] = emulator.runs()
    assert ("success", 1, 1) == (state, emulator.counters().runs_submitted, tries)
    assert (run["run_id"], run["run_page_url"]) == (
        xcom("dbx_none", "run_id"),
        xcom("dbx_none", "run_page_url"),
    )
    assert (run["run_id"], True) == (store[RECORD_KEY]["external_id"], store[RECORD_KEY]["success_reported"])
    assert "SUCCESS" == run["state"]["result_state"]


@pytest.mark.parametrize(
    "dag_id",
    ["dbx_crash_after_submit", "dbx_crash_after_persist", "dbx_crash_in_completion"],
)
def test_worker_killed_at_any_point_resumes_the_same_run(
    dag_id: str, dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """Killed after submit (id never persisted), after persisting, or in completion: the retry
    resumes the one run that exists, and the workspace never sees a second submission create a run."""
    emulator = databricks_emulator_env.emulator
    state, store, tries = run_dag(dagbag, dag_id)
    [run] = emulator.runs()
    assert ("success", 1, 2) == (state, emulator.counters().runs_submitted, tries)
    assert run["run_id"] == store[RECORD_KEY]["external_id"]


def test_retry_that_finds_the_run_succeeded_still_pushes_its_run_id_and_url(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """Killed in the completion method, the retry finds the run succeeded and submits nothing; Airflow
    cleared the first try's XComs when the retry started, so the retry pushes run id and URL again."""
    emulator = databricks_emulator_env.emulator
    state, _, tries = run_dag(dagbag, "dbx_crash_in_completion")
    [run] = emulator.runs()
    assert ("success", 2) == (state, tries)
    assert (run["run_id"], run["run_page_url"]) == (
        xcom("dbx_crash_in_completion", "run_id"),
        xcom("dbx_crash_in_completion", "run_page_url"),
    )


@pytest.mark.parametrize(
    "dag_id", ["dbx_sigterm_during_submit", "dbx_sigterm_before_defer", "dbx_sigterm_while_polling"]
)
def test_sigterm_checkpoints_without_cancelling_the_run(
    dag_id: str, dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """A worker shutdown while the task holds the run (while its submit is in flight, before
    deferring, or polling with deferrable=False) re-enters the deferral: same try, no cancel, one run
    that succeeds. During the submit the SIGTERM waits for the answer, so the run it names is held."""
    emulator = databricks_emulator_env.emulator
    state, _, tries = run_dag(dagbag, dag_id)
    [run] = emulator.runs()
    assert ("success", 1, 1) == (state, emulator.counters().runs_submitted, tries)
    assert ("SUCCESS", 0) == (
        run["state"]["result_state"],
        emulator.counters().requests_by_endpoint.get("runs/cancel", 0),
    )
    # Before deferring, the SIGTERM may land before the run id was pushed: completion pushes it.
    assert run["run_id"] == xcom(dag_id, "run_id")


def test_failed_run_is_retried_with_a_fresh_run_not_the_failed_one(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """The first run fails on Databricks; the retry submits exactly one new run (new token), and the
    task succeeds with it (cf. apache/airflow#64828: a reused token hands back the failed run)."""
    emulator = databricks_emulator_env.emulator
    state, store, tries = run_dag(dagbag, "dbx_first_run_fails")
    runs = sorted(emulator.runs(), key=lambda r: r["run_id"])
    assert ("success", 2, 2) == (state, len(runs), tries)
    assert ["FAILED", "SUCCESS"] == [r["state"]["result_state"] for r in runs]
    assert (runs[1]["run_id"], 1) == (store[RECORD_KEY]["external_id"], store[RECORD_KEY]["generation"])


def test_run_that_keeps_failing_fails_the_task_with_the_task_error(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each try gets one fresh run; when they all fail, the task fails and its log says why, with the
    failed task's error from get-output and the run's page."""
    emulator = databricks_emulator_env.emulator
    state, _, tries = run_dag(dagbag, "dbx_fails_every_time")
    assert ("failed", 2, 2) == (state, emulator.counters().runs_submitted, tries)
    failure_lines = [line for line in capfd.readouterr().out.splitlines() if "JobFailed:" in line]
    assert 2 == len(failure_lines)
    assert all("table not found" in line and "#job/" in line for line in failure_lines)


def test_invalid_spec_fails_before_any_api_call(dagbag: Any, databricks_emulator_env: EmulatorHandle) -> None:
    """A task without task_key fails the task with a message naming the field; the workspace saw nothing."""
    emulator = databricks_emulator_env.emulator
    state, store, _ = run_dag(dagbag, "dbx_invalid_spec")
    assert ("failed", {}, {}) == (state, dict(emulator.counters().requests_by_endpoint), store)


def test_templated_fields_are_rendered_into_the_submitted_spec(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """json and named fields are Jinja-templated like the provider's, and the top-level task is
    moved into ``tasks`` with the task id as its key."""
    emulator = databricks_emulator_env.emulator
    state, _, _ = run_dag(dagbag, "dbx_templated")
    [run] = emulator.runs()
    assert ("success", "nightly dbx_templated") == (state, run["run_name"])
    assert ["etl"] == [task["task_key"] for task in run["tasks"]]


def test_run_now_by_job_name_runs_the_job_once(dagbag: Any, databricks_emulator_env: EmulatorHandle) -> None:
    """run-now resolves the job by name and triggers it exactly once, passing notebook_params."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import NotebookTask, Task

    workspace = WorkspaceClient(host=databricks_emulator_env.url, token=databricks_emulator_env.token)
    job = workspace.jobs.create(
        name="nightly-etl",
        tasks=[Task(task_key="main", notebook_task=NotebookTask(notebook_path="/jobs/nightly"))],
    )
    state, _, _ = run_dag(dagbag, "dbx_run_now")
    [run] = databricks_emulator_env.emulator.runs()
    assert ("success", job.job_id, "JOB_RUN") == (state, run["job_id"], run["run_type"])


class RecordingStats:
    """A metrics backend that remembers counters (a fake, installed through Airflow's public hook)."""

    def __init__(self) -> None:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        self._quiet = NoStatsLogger()
        self.counters: list[tuple[str, str]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, Any] | None = None) -> None:
        self.counters.append((stat, (tags or {}).get("operator", "")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._quiet, name)  # gauges, timers...: not what these tests look at


@pytest.fixture
def recorded_stats() -> Any:
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats

    recorder = RecordingStats()
    stats.initialize(factory=lambda: recorder, export_legacy_names=False)  # type: ignore[arg-type,return-value]
    yield recorder
    stats.initialize(factory=NoStatsLogger, export_legacy_names=True)


def test_resume_decisions_emit_resumable_job_metrics(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, recorded_stats: RecordingStats
) -> None:
    """The same metric names as Airflow's ResumableJobMixin, so existing dashboards keep working:
    a fresh submit on try 1, then a reconnect attempt that succeeded on try 2."""
    state, _, _ = run_dag(dagbag, "dbx_crash_after_persist")
    ours = [stat for stat, operator in recorded_stats.counters if stat.startswith("resumable_job.")]
    operators = {operator for stat, operator in recorded_stats.counters if stat.startswith("resumable_job.")}
    assert "success" == state
    assert [
        "resumable_job.fresh_submit",
        "resumable_job.reconnect_attempt",
        "resumable_job.reconnect_success",
    ] == ours
    assert {"FaultyDatabricksSubmitRunOperator"} == operators


def test_extra_link_points_at_the_run_page(dagbag: Any, databricks_emulator_env: EmulatorHandle) -> None:
    """The "See Databricks Job Run" link of a finished task is the run's page URL (Airflow 3 resolves
    links in the worker when the task ends and stores them for the UI as XCom)."""
    from resumable_triggers.databricks import DatabricksRunLink

    state, _, _ = run_dag(dagbag, "dbx_templated")
    [run] = databricks_emulator_env.emulator.runs()
    link = xcom("dbx_templated", DatabricksRunLink().xcom_key)
    assert ("success", run["run_page_url"]) == (state, link)


def test_execution_timeout_in_the_worker_cancels_the_run(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """With deferrable=False, hitting execution_timeout fails the task and cancels its run, as the
    provider does: nobody is left waiting for it."""
    emulator = databricks_emulator_env.emulator
    state, _, _ = run_dag(dagbag, "dbx_execution_timeout")
    [run] = emulator.runs()
    assert ("failed", 1) == (state, emulator.counters().requests_by_endpoint.get("runs/cancel", 0))
    assert run["state"]["life_cycle_state"] in ("TERMINATING", "TERMINATED")


def test_execution_timeout_during_the_submit_waits_for_its_answer_and_cancels_the_run(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """The 2 s execution_timeout strikes while the workspace takes 3 s to create the run: the timeout
    waits for the answer (it used to throw it away, leaving the run going with its task failed), then
    fails the task and cancels that run, which the record names."""
    emulator = databricks_emulator_env.emulator
    emulator.inject_fault(endpoint="runs/submit", kind="latency", count=1, delay_seconds=3.0)
    state, store, _ = run_dag(dagbag, "dbx_execution_timeout")
    [run] = emulator.runs()
    assert ("failed", 1) == (state, emulator.counters().requests_by_endpoint.get("runs/cancel", 0))
    assert run["state"]["life_cycle_state"] in ("TERMINATING", "TERMINATED")
    assert run["run_id"] == store[RECORD_KEY]["external_id"]


def test_secret_never_reaches_logs_xcom_or_trigger_kwargs(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, capfd: pytest.CaptureFixture[str]
) -> None:
    """The workspace token is used for requests only: not in the task's log output, not in any XCom,
    not in the trigger kwargs Airflow stores in its database."""
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    token = databricks_emulator_env.token
    state, store, _ = run_dag(dagbag, "dbx_sigterm_before_defer")
    output = capfd.readouterr()
    with create_session() as session:
        xcoms = [str(XComModel.deserialize_value(r)) for r in session.query(XComModel).all()]
        triggers = [str(t.kwargs) for t in session.query(Trigger).all()]
    assert "success" == state
    assert xcoms, "the run id and page URL XComs should have been checked"
    assert [] == [text for text in [output.out, output.err, str(store), *xcoms, *triggers] if token in text]

"""The Airflow Databricks provider's DatabricksHook (sync and async) against the emulator.

The connection comes from ``AIRFLOW_CONN_DATABRICKS_DEFAULT`` (JSON), as users configure it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tenacity import stop_after_attempt, wait_fixed

from resumable_triggers.testing import Emulator, EmulatorHandle, ManualClock, airflow_connection

# Retries without the provider's 1 s minimum back-off, so a survived 429 costs milliseconds.
_FAST_RETRIES = {"stop": stop_after_attempt(3), "wait": wait_fixed(0.01)}


def _task(key: str = "main", **declared: str) -> dict[str, Any]:
    parameters = {f"emulator.{k}": v for k, v in declared.items()}
    return {"task_key": key, "notebook_task": {"notebook_path": "/Shared/x", "base_parameters": parameters}}


@pytest.fixture
def connection(served: EmulatorHandle, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """AIRFLOW_CONN_DATABRICKS_DEFAULT pointing at the threaded emulator with its PAT."""
    value = airflow_connection(served.url, emulator.token)
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", value)
    return value


@pytest.fixture
def hook(connection: str) -> Any:
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    return DatabricksHook(retry_args=_FAST_RETRIES)


def test_connection_format_makes_the_hook_call_the_emulator_over_http(
    hook: Any, served: EmulatorHandle
) -> None:
    """host (bare), port and schema="http" make the hook build http://127.0.0.1:PORT URLs."""
    assert f"{served.url}/api/2.2/jobs/runs/get" == hook._endpoint_url("api/2.2/jobs/runs/get")


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("SUCCESS", ("TERMINATED", "SUCCESS", True)),
        ("FAILED", ("TERMINATED", "FAILED", False)),
        ("TIMEDOUT", ("TERMINATED", "TIMEDOUT", False)),
        ("INTERNAL_ERROR", ("INTERNAL_ERROR", "FAILED", False)),
    ],
)
def test_hook_submit_and_poll_reaches_each_terminal_outcome(
    hook: Any, clock: ManualClock, declared: str, expected: tuple[str, str, bool]
) -> None:
    """submit_run then get_run_state: PENDING first, then the declared terminal state."""
    run_id = hook.submit_run({"run_name": "hook", "tasks": [_task(result_state=declared)]})
    first = hook.get_run_state(run_id)
    clock.advance(10)
    state = hook.get_run_state(run_id)
    assert (("PENDING", False), expected) == (
        (first.life_cycle_state, first.is_terminal),
        (state.life_cycle_state, state.result_state, state.is_successful),
    )


def test_hook_reads_a_failed_task_error_through_get_run_output(hook: Any, clock: ManualClock) -> None:
    """get_run_output of the failed task run returns the scripted error."""
    run_id = hook.submit_run({"tasks": [_task(result_state="FAILED", error="bad input")]})
    clock.advance(10)
    task_run_id = hook.get_run(run_id)["tasks"][0]["run_id"]
    assert "bad input" == hook.get_run_output(task_run_id)["error"]


def test_hook_cancel_run_ends_canceled(hook: Any, clock: ManualClock) -> None:
    """cancel_run: TERMINATING immediately, CANCELED after the clean-up time."""
    run_id = hook.submit_run({"tasks": [_task()]})
    hook.cancel_run(run_id)
    terminating = hook.get_run_state(run_id).life_cycle_state
    clock.advance(1)
    assert ("TERMINATING", "CANCELED") == (terminating, hook.get_run_state(run_id).result_state)


def test_hook_get_run_collects_every_page_of_a_150_task_run(hook: Any) -> None:
    """get_run follows next_page_token and merges all 150 tasks of a run-now run."""
    job_id = hook.create_job({"name": "wide", "tasks": [_task(f"t{i}") for i in range(150)]})
    run_id = hook.run_now({"job_id": job_id})
    assert [f"t{i}" for i in range(150)] == [t["task_key"] for t in hook.get_run(run_id)["tasks"]]


def test_hook_finds_a_job_by_name_and_runs_it(hook: Any, emulator: Emulator) -> None:
    """find_job_id_by_name (jobs/list?name=) then run_now starts a JOB_RUN of that job."""
    hook.create_job({"name": "other", "tasks": [_task()]})
    job_id = hook.create_job({"name": "nightly", "tasks": [_task()]})
    found = hook.find_job_id_by_name("nightly")
    run_id = hook.run_now({"job_id": found})
    assert (job_id, job_id, "JOB_RUN") == (
        found,
        hook.get_job_id(run_id),
        emulator.get_run(run_id)["run_type"],
    )


def test_hook_reused_idempotency_token_returns_the_same_run(hook: Any, emulator: Emulator) -> None:
    """Two submit_run calls with one idempotency_token create one run."""
    spec = {"tasks": [_task()], "idempotency_token": "airflow-try-1"}
    assert (hook.submit_run(spec), 1) == (hook.submit_run(spec), emulator.counters().runs_submitted)


def test_hook_unknown_run_raises_with_the_api_message(hook: Any) -> None:
    """get_run_state of an unknown run raises DatabricksApiError carrying status 400 and the message."""
    from airflow.providers.databricks.exceptions import DatabricksApiError

    with pytest.raises(DatabricksApiError, match="Run 5 does not exist") as caught:
        hook.get_run_state(5)
    assert 400 == caught.value.http_status_code


def test_hook_survives_a_429_on_runs_get(hook: Any, emulator: Emulator) -> None:
    """A 429 on runs/get is retried by the hook and get_run_state succeeds."""
    run_id = hook.submit_run({"tasks": [_task()]})
    emulator.inject_fault(endpoint="runs/get", kind="http_error", status=429, retry_after_seconds=1)
    state = hook.get_run_state(run_id)
    assert ("PENDING", 1) == (state.life_cycle_state, emulator.counters().responses_by_status[429])


def test_hook_with_login_and_password_uses_http_basic(
    served: EmulatorHandle, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection with login/password (no token) authenticates with HTTP Basic."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    conn = json.loads(airflow_connection(served.url, "emulator-password")) | {"login": "emulator@example.com"}
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_BASIC", json.dumps(conn))
    run_id = DatabricksHook("databricks_basic", retry_args=_FAST_RETRIES).submit_run({"tasks": [_task()]})
    assert [run_id] == [r["run_id"] for r in emulator.runs()]


@pytest.mark.asyncio
async def test_async_hook_polls_state_output_and_page_url(
    connection: str, emulator: Emulator, clock: ManualClock
) -> None:
    """a_get_run_state / a_get_run / a_get_run_output / a_get_run_page_url work with JSON-body GETs."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    sync_hook = DatabricksHook(retry_args=_FAST_RETRIES)
    run_id = sync_hook.submit_run({"tasks": [_task(result_state="FAILED", error="async boom")]})
    clock.advance(10)
    async with DatabricksHook(retry_args=_FAST_RETRIES) as hook:
        state = await hook.a_get_run_state(run_id)
        run = await hook.a_get_run(run_id)
        output = await hook.a_get_run_output(run["tasks"][0]["run_id"])
        page_url = await hook.a_get_run_page_url(run_id)
    assert (("TERMINATED", "FAILED"), "async boom", emulator.get_run(run_id)["run_page_url"]) == (
        (state.life_cycle_state, state.result_state),
        output["error"],
        page_url,
    )


@pytest.mark.asyncio
async def test_async_hook_survives_a_503_and_a_429(connection: str, emulator: Emulator) -> None:
    """The async hook retries a 503 and then a 429 on runs/get and returns the state."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    run_id = DatabricksHook(retry_args=_FAST_RETRIES).submit_run({"tasks": [_task()]})
    emulator.inject_fault(endpoint="runs/get", kind="http_error", status=503)
    emulator.inject_fault(endpoint="runs/get", kind="http_error", status=429, retry_after_seconds=1)
    async with DatabricksHook(retry_args=_FAST_RETRIES) as hook:
        state = await hook.a_get_run_state(run_id)
    statuses = emulator.counters().responses_by_status
    assert ("PENDING", 1, 1) == (state.life_cycle_state, statuses[503], statuses[429])


@pytest.mark.asyncio
async def test_async_hook_gets_all_pages_of_a_150_task_run(connection: str) -> None:
    """a_get_run merges the 2.2 pages of a 150-task run."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    sync_hook = DatabricksHook(retry_args=_FAST_RETRIES)
    run_id = sync_hook.run_now(
        {"job_id": sync_hook.create_job({"tasks": [_task(f"t{i}") for i in range(150)]})}
    )
    async with DatabricksHook(retry_args=_FAST_RETRIES) as hook:
        run = await hook.a_get_run(run_id)
    assert 150 == len(run["tasks"])


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("SUCCESS", ("TERMINATED", "SUCCESS")),
        ("FAILED", ("TERMINATED", "FAILED")),
        ("TIMEDOUT", ("TERMINATED", "TIMEDOUT")),
        ("INTERNAL_ERROR", ("INTERNAL_ERROR", "FAILED")),
        ("cancel", ("TERMINATED", "CANCELED")),
    ],
)
@pytest.mark.asyncio
async def test_async_hook_polls_to_each_terminal_outcome(
    connection: str, clock: ManualClock, declared: str, expected: tuple[str, str]
) -> None:
    """a_get_run_state sees RUNNING, then each terminal outcome (cancel through cancel_run)."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    sync_hook = DatabricksHook(retry_args=_FAST_RETRIES)
    outcome = {} if declared == "cancel" else {"result_state": declared}
    run_id = sync_hook.submit_run({"tasks": [_task(**outcome)]})
    clock.advance(5)
    async with DatabricksHook(retry_args=_FAST_RETRIES) as hook:
        running = await hook.a_get_run_state(run_id)
        if declared == "cancel":
            sync_hook.cancel_run(run_id)
        clock.advance(5)
        final = await hook.a_get_run_state(run_id)
    assert (("RUNNING", False), expected, True) == (
        (running.life_cycle_state, running.is_terminal),
        (final.life_cycle_state, final.result_state),
        final.is_terminal,
    )


# --- the provider's one-task operators, standalone: every request they make ------------------------
# The operators build their bodies and drive the hook themselves; the clock is stepped past the run's
# end before monitoring, so their poll loops find a terminal state at once and never sleep.


def _notebook(**arguments: Any) -> Any:
    from airflow.providers.databricks.operators.databricks import DatabricksNotebookOperator

    # A deferring operator's retry arguments must serialize into the trigger: none there.
    retries: dict[str, Any] = {} if arguments.get("deferrable") else {"databricks_retry_args": _FAST_RETRIES}
    return DatabricksNotebookOperator(
        task_id="nb",
        notebook_path="/Shared/x",
        source="WORKSPACE",
        existing_cluster_id="0101-abc",
        databricks_task_key="nb",
        **retries,
        **arguments,
    )


def _task_operator(**task_config: Any) -> Any:
    from airflow.providers.databricks.operators.databricks import DatabricksTaskOperator

    return DatabricksTaskOperator(
        task_id="tk",
        task_config={"notebook_task": {"notebook_path": "/Shared/x", "base_parameters": {}}, **task_config},
        existing_cluster_id="0101-abc",
        databricks_task_key="tk",
        databricks_retry_args=_FAST_RETRIES,
    )


_STANDALONE = {
    # No retry fields: the one-task 2.0 shape, monitored through the task run's id.
    "single-attempt": ({}, [0]),
    # A retry field: the tasks[] shape, monitored through the run; the first attempt fails.
    "native-retries": (
        {"max_retries": 1, "min_retry_interval_millis": 1000, "retry_on_timeout": True},
        [0, 1],
    ),
}


@pytest.mark.parametrize(("arguments", "attempt_numbers"), _STANDALONE.values(), ids=list(_STANDALONE))
def test_standalone_notebook_operator_launches_and_monitors_through_the_emulator(
    connection: str,
    emulator: Emulator,
    clock: ManualClock,
    arguments: dict[str, Any],
    attempt_numbers: list[int],
) -> None:
    """_launch_job (runs/submit, runs/get for the page URL) and monitor_databricks_job (runs/get of
    the run and of a task run) succeed; every request was answered 200; a fail_attempts=1 task with
    max_retries=1 succeeds on its retry."""
    fail = {"emulator.fail_attempts": "1"} if arguments else {}
    operator = _notebook(notebook_params=fail, **arguments)
    run_id = operator._launch_job()
    clock.advance(30)
    operator.monitor_databricks_job()
    run = emulator.get_run(run_id)
    assert ("SUCCESS", attempt_numbers, {200}) == (
        run["state"]["result_state"],
        [t["attempt_number"] for t in run["tasks"]],
        {r.status for r in emulator.request_log},
    )


def test_standalone_task_operator_reports_the_error_of_the_last_attempt_only(
    connection: str, emulator: Emulator, clock: ManualClock
) -> None:
    """A task that fails every attempt (max_retries=1): the operator raises with one error, read by
    runs/get-output from the latest attempt's task run."""
    from airflow.exceptions import AirflowException

    operator = _task_operator(
        max_retries=1,
        notebook_task={
            "notebook_path": "/Shared/x",
            "base_parameters": {"emulator.result_state": "FAILED", "emulator.error": "bad input"},
        },
    )
    run_id = operator._launch_job()
    clock.advance(30)
    with pytest.raises(AirflowException, match=r"Task failed\. Final state FAILED") as caught:
        operator.monitor_databricks_job()
    last = emulator.get_run(run_id)["tasks"][-1]
    assert (1, 1, f"'run_id': {last['run_id']}") == (
        last["attempt_number"],
        str(caught.value).count("'task_key': 'tk'"),
        next(part for part in str(caught.value).split(", ") if part.startswith("'run_id'")),
    )


@pytest.mark.parametrize(("arguments", "attempt_numbers"), _STANDALONE.values(), ids=list(_STANDALONE))
@pytest.mark.asyncio
async def test_deferred_notebook_operator_completes_through_the_providers_trigger(
    connection: str, clock: ManualClock, arguments: dict[str, Any], attempt_numbers: list[int]
) -> None:
    """deferrable=True: the operator defers on the running run (or task run); the provider's
    DatabricksExecutionTrigger polls with the async hook (JSON-body GETs) to a SUCCESS event that
    execute_complete accepts."""
    from airflow.sdk.exceptions import TaskDeferred

    fail = {"emulator.fail_attempts": "1"} if arguments else {}
    operator = _notebook(notebook_params=fail, deferrable=True, **arguments)
    operator._launch_job()
    with pytest.raises(TaskDeferred) as deferred:
        operator.monitor_databricks_job()
    clock.advance(30)
    events = deferred.value.trigger.run()
    event = await anext(events)
    await events.aclose()
    operator.execute_complete(None, event.payload)
    assert ("SUCCESS", []) == (
        json.loads(event.payload["run_state"])["result_state"],
        event.payload["errors"],
    )


def test_on_kill_of_a_standalone_operator_cancels_its_run(
    connection: str, emulator: Emulator, clock: ManualClock
) -> None:
    """on_kill sends runs/cancel for the submitted run, which ends CANCELED."""
    operator = _notebook(max_retries=2)
    run_id = operator._launch_job()
    operator.on_kill()
    clock.advance(1)
    assert "CANCELED" == emulator.get_run(run_id)["state"]["result_state"]


def test_hook_get_latest_repair_id_and_repair_run_follow_the_repair_history(
    hook: Any, clock: ManualClock
) -> None:
    """get_latest_repair_id is None before any repair (a one-entry history), then the repair_run's
    id; a fail_attempts=1 task succeeds in that repair."""
    run_id = hook.submit_run({"tasks": [_task(fail_attempts="1")]})
    clock.advance(10)
    before = hook.get_latest_repair_id(run_id)
    repair_id = hook.repair_run(
        {"run_id": run_id, "rerun_all_failed_tasks": True, "latest_repair_id": before}
    )
    clock.advance(10)
    assert (None, repair_id, "SUCCESS") == (
        before,
        hook.get_latest_repair_id(run_id),
        hook.get_run_state(run_id).result_state,
    )


def test_hook_update_job_merges_the_tasks_the_next_run_now_runs(hook: Any, clock: ManualClock) -> None:
    """update_job (jobs/update with the job id as a string, as the hook's callers pass it) replaces
    the task by its key; run_now then runs the new task."""
    job_id = hook.create_job({"name": "j", "tasks": [_task("main"), _task("other")]})
    hook.update_job(str(job_id), {"tasks": [_task("main", result_state="FAILED")]})
    run_id = hook.run_now({"job_id": job_id})
    clock.advance(10)
    assert ("FAILED", ["main", "other"]) == (
        hook.get_run_state(run_id).result_state,
        [t["task_key"] for t in hook.get_run(run_id)["tasks"]],
    )

"""Typed models: parsing real-shaped payloads, and tolerance of values newer than the library."""

from __future__ import annotations

import dataclasses

import pytest

from resumable_triggers.databricks.client import (
    LifeCycleState,
    ResultState,
    Run,
    RunOutput,
    RunsPage,
    RunState,
    RunStatusState,
    RunType,
    TaskRun,
)

FINISHED_RUN = {
    "run_id": 11,
    "job_id": 7,
    "number_in_job": 11,
    "run_name": "nightly",
    "run_type": "SUBMIT_RUN",
    "run_page_url": "https://ws.example/?o=1#job/7/run/11",
    "start_time": 1_750_000_000_000,
    "end_time": 1_750_000_060_000,
    "setup_duration": 0,
    "execution_duration": 0,
    "cleanup_duration": 0,
    "run_duration": 60_000,
    "attempt_number": 0,
    "state": {
        "life_cycle_state": "TERMINATED",
        "result_state": "FAILED",
        "state_message": "Task etl failed",
        "user_cancelled_or_timedout": False,
    },
    "status": {
        "state": "TERMINATED",
        "termination_details": {"code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR", "message": "boom"},
    },
    "tasks": [
        {
            "run_id": 12,
            "task_key": "etl",
            "attempt_number": 1,
            "start_time": 1_750_000_001_000,
            "end_time": 1_750_000_059_000,
            "run_page_url": "https://ws.example/?o=1#job/7/run/12",
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
        }
    ],
    "creator_user_name": "someone@example.com",
}


def test_a_finished_multi_task_run_parses_into_typed_fields() -> None:
    """Every documented field lands in its typed attribute, tasks included."""
    run = Run.from_api(FINISHED_RUN)

    assert 11 == run.run_id
    assert 7 == run.job_id
    assert RunType.SUBMIT_RUN is run.run_type
    assert RunState(LifeCycleState.TERMINATED, ResultState.FAILED, "Task etl failed", False) == run.state
    assert run.status is not None
    assert RunStatusState.TERMINATED is run.status.state
    assert run.status.termination_details is not None
    assert "RUN_EXECUTION_ERROR" == run.status.termination_details.code
    assert (1_750_000_000_000, 1_750_000_060_000, 60_000) == (
        run.start_time_ms,
        run.end_time_ms,
        run.run_duration_ms,
    )
    assert 0 == run.setup_duration_ms
    assert (
        TaskRun(
            run_id=12,
            task_key="etl",
            state=RunState(LifeCycleState.TERMINATED, ResultState.FAILED),
            run_page_url="https://ws.example/?o=1#job/7/run/12",
            start_time_ms=1_750_000_001_000,
            end_time_ms=1_750_000_059_000,
            attempt_number=1,
        ),
    ) == run.tasks
    assert run.state.is_terminal
    assert not run.state.is_successful
    assert run.tasks[0].has_failed


def test_a_running_run_has_no_result_state_and_no_end_time() -> None:
    """While running, the API sends end_time 0 and no result_state: both read as None."""
    run = Run.from_api({"run_id": 3, "end_time": 0, "state": {"life_cycle_state": "RUNNING"}})

    assert None is run.end_time_ms
    assert None is run.state.result_state
    assert not run.state.is_terminal
    assert () == run.tasks


@pytest.mark.parametrize("life_cycle_state", ["TELEPORTING", "", None])
def test_unknown_life_cycle_states_parse_to_unknown_and_keep_polling(life_cycle_state: str | None) -> None:
    """A life-cycle state newer than the library (or missing) is UNKNOWN, not terminal, never an error."""
    state = RunState.from_api({"life_cycle_state": life_cycle_state})

    assert LifeCycleState.UNKNOWN is state.life_cycle_state
    assert not state.is_terminal


def test_unknown_result_and_status_states_parse_to_unknown() -> None:
    """New result states, status states and run types degrade to UNKNOWN instead of raising."""
    run = Run.from_api(
        {
            "run_id": 1,
            "run_type": "SERVERLESS_MAGIC_RUN",
            "state": {"life_cycle_state": "TERMINATED", "result_state": "PARTIALLY_SUCCEEDED"},
            "status": {"state": "HIBERNATING"},
        }
    )

    assert ResultState.UNKNOWN is run.state.result_state
    assert RunType.UNKNOWN is run.run_type
    assert run.status is not None
    assert RunStatusState.UNKNOWN is run.status.state
    assert run.state.is_terminal
    assert not run.state.is_successful


@pytest.mark.parametrize(
    ("result_state", "successful"),
    [("SUCCESS", True), ("SUCCESS_WITH_FAILURES", False), ("CANCELED", False)],
)
def test_only_plain_success_counts_as_successful(result_state: str, successful: bool) -> None:
    """is_successful matches the Airflow provider: SUCCESS only."""
    state = RunState.from_api({"life_cycle_state": "TERMINATED", "result_state": result_state})

    assert successful == state.is_successful


@pytest.mark.parametrize(
    ("state", "failed"),
    [
        ({"life_cycle_state": "TERMINATED", "result_state": "FAILED"}, True),
        ({"life_cycle_state": "TERMINATED", "result_state": "TIMEDOUT"}, True),
        ({"life_cycle_state": "INTERNAL_ERROR"}, True),
        ({"life_cycle_state": "TERMINATED", "result_state": "UPSTREAM_FAILED"}, False),
        ({"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}, False),
        ({"life_cycle_state": "RUNNING"}, False),
    ],
)
def test_a_task_has_failed_only_when_it_failed_itself(state: dict[str, str], failed: bool) -> None:
    """Tasks skipped because of an upstream failure have no error of their own to fetch."""
    task = TaskRun.from_api({"run_id": 1, "task_key": "t", "state": state})

    assert failed == task.has_failed


def test_run_output_reads_notebook_result_error_and_logs() -> None:
    """get-output's nested notebook_output and flat error fields are flattened into RunOutput."""
    output = RunOutput.from_api(
        {
            "notebook_output": {"result": "42", "truncated": True},
            "error": "ZeroDivisionError: division by zero",
            "error_trace": "Traceback ...",
            "logs": "hello",
        },
        run_id=12,
    )

    assert (
        RunOutput(
            run_id=12,
            error="ZeroDivisionError: division by zero",
            error_trace="Traceback ...",
            notebook_result="42",
            notebook_result_truncated=True,
            logs="hello",
        )
        == output
    )


def test_an_empty_runs_page_has_no_runs_and_no_token() -> None:
    """runs/list omits ``runs`` when empty and ``next_page_token`` on the last page."""
    assert RunsPage(runs=(), has_more=False, next_page_token=None) == RunsPage.from_api({"has_more": False})


def test_models_are_frozen_and_slotted() -> None:
    """Snapshots cannot be mutated by a caller, and carry no per-instance dict."""
    run = Run.from_api({"run_id": 1, "state": {"life_cycle_state": "PENDING"}})

    with pytest.raises(dataclasses.FrozenInstanceError):
        run.run_id = 2  # type: ignore[misc]
    assert not hasattr(run, "__dict__")

"""Each endpoint of the client against the emulator, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from client_testkit import create_job

from resumable_triggers.databricks.client import (
    ApiError,
    ClientSettings,
    DatabricksClient,
    JobLookupError,
    LifeCycleState,
    ResultState,
    RunNotFound,
    SdkHeaderProvider,
)
from resumable_triggers.testing import Emulator, ManualClock

FAST = ClientSettings(requests_per_second=1000, burst=1000)


def notebook_task(key: str, **emulator: Any) -> dict[str, Any]:
    """A task whose ``emulator.*`` parameters script its outcome."""
    parameters = {f"emulator.{name}": str(value) for name, value in emulator.items()}
    return {"task_key": key, "notebook_task": {"notebook_path": "/x", "base_parameters": parameters}}


@pytest.mark.asyncio
async def test_submitted_run_is_read_back_with_typed_state(emulator_url: str, pat: SdkHeaderProvider) -> None:
    """submit_run returns the run id that get_run then describes, with its tasks."""
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.submit_run(
            {"run_name": "etl", "tasks": [notebook_task("a"), notebook_task("b")]}, idempotency_token=None
        )
        run = await client.get_run(run_id)

    assert run_id == run.run_id
    assert "etl" == run.run_name
    assert ["a", "b"] == [task.task_key for task in run.tasks]
    assert not run.state.is_terminal
    assert None is run.state.result_state


@pytest.mark.asyncio
async def test_unknown_run_raises_run_not_found_with_its_id(
    emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """Databricks answers 400 INVALID_PARAMETER_VALUE "Run N does not exist.": that is RunNotFound."""
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        with pytest.raises(RunNotFound) as excinfo:
            await client.get_run(987654321)

    assert 987654321 == excinfo.value.run_id
    assert (400, "INVALID_PARAMETER_VALUE", "jobs/runs/get") == (
        excinfo.value.status,
        excinfo.value.error_code,
        excinfo.value.endpoint,
    )


@pytest.mark.asyncio
async def test_cancelled_run_ends_canceled(
    clock: ManualClock, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """cancel_run returns while the run is still TERMINATING; it then terminates CANCELED."""
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.submit_run({"tasks": [notebook_task("a")]}, idempotency_token="cancel-me")
        await client.cancel_run(run_id)
        await client.cancel_run(run_id)  # a second cancel is harmless
        terminating = await client.get_run(run_id)
        clock.advance(10)
        run = await client.get_run(run_id)

    assert LifeCycleState.TERMINATING is terminating.state.life_cycle_state
    assert LifeCycleState.TERMINATED is run.state.life_cycle_state
    assert ResultState.CANCELED is run.state.result_state


@pytest.mark.asyncio
async def test_cancel_all_runs_cancels_the_active_runs_of_that_job_only(
    clock: ManualClock, emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """cancel_all_runs(job) ends that job's active runs CANCELED and leaves another job's run alone;
    repeating it is harmless."""
    job = await create_job(emulator_url, emulator.token, {"name": "a", "tasks": [notebook_task("a")]})
    other = await create_job(emulator_url, emulator.token, {"name": "b", "tasks": [notebook_task("b")]})
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        first, second = [await client.run_now(job) for _ in range(2)]
        spared = await client.run_now(other)
        await client.cancel_all_runs(job)
        await client.cancel_all_runs(job)
        clock.advance(10)
        states = [(await client.get_run(run_id)).state.result_state for run_id in (first, second, spared)]

    assert [ResultState.CANCELED, ResultState.CANCELED, ResultState.SUCCESS] == states


@pytest.mark.asyncio
async def test_failed_task_errors_reports_each_failed_task_with_its_error(
    clock: ManualClock, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """Only tasks that failed themselves are reported, each with the error from its get-output."""
    spec = {
        "tasks": [
            notebook_task("ok"),
            notebook_task("bad", result_state="FAILED", error="KeyError: 'customer_id'"),
        ]
    }
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.submit_run(spec, idempotency_token=None)
        clock.advance(60)
        run = await client.get_run(run_id)
        errors = await client.failed_task_errors(run)

    assert [("bad", "KeyError: 'customer_id'")] == [(error.task_key, error.error) for error in errors]
    assert run.tasks[1].run_id == errors[0].run_id


@pytest.mark.asyncio
async def test_failed_task_errors_ignores_an_attempt_that_a_task_retry_made_good(
    clock: ManualClock, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """With Databricks' own task retries, runs/get lists each attempt: a task whose first attempt
    failed and whose retry succeeded is no failure; the task that failed its last attempt is."""
    flaky = {**notebook_task("flaky", fail_attempts=1, error="transient"), "max_retries": 1}
    spec = {"tasks": [flaky, notebook_task("bad", result_state="FAILED", error="KeyError: 'customer_id'")]}
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.submit_run(spec, idempotency_token=None)
        clock.advance(600)
        run = await client.get_run(run_id)
        errors = await client.failed_task_errors(run)

    assert [("flaky", 0), ("flaky", 1), ("bad", 0)] == [(t.task_key, t.attempt_number) for t in run.tasks]
    assert [("bad", "KeyError: 'customer_id'")] == [(error.task_key, error.error) for error in errors]


@pytest.mark.asyncio
async def test_repair_run_reruns_the_failed_task_and_the_history_names_the_repair(
    clock: ManualClock, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """repair_run re-runs the failed task on the same run; get_run(include_history=True) lists the
    ORIGINAL attempt and the repair, whose id is the latest_repair_id the next repair must send; a
    repair based on a stale view is refused with ApiError 400."""
    spec = {"tasks": [notebook_task("ok"), notebook_task("flaky", fail_attempts=1)]}
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.submit_run(spec, idempotency_token=None)
        clock.advance(60)
        before = await client.get_run(run_id, include_history=True)
        repair_id = await client.repair_run(run_id, latest_repair_id=None)
        with pytest.raises(ApiError) as stale:
            await client.repair_run(run_id, latest_repair_id=None)
        clock.advance(60)
        after = await client.get_run(run_id, include_history=True)

    assert (ResultState.FAILED, (), None) == (
        before.state.result_state,
        before.repairs,
        before.latest_repair_id,
    )
    assert (ResultState.SUCCESS, repair_id) == (after.state.result_state, after.latest_repair_id)
    assert [None, repair_id] == [entry.repair_id for entry in after.repair_history]
    assert 400 == stale.value.status


@pytest.mark.asyncio
async def test_run_output_of_a_task_run_carries_the_notebook_result(
    clock: ManualClock, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """get_run_output takes a task run id and returns the notebook's exit value."""
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.submit_run({"tasks": [notebook_task("a", output="42")]}, idempotency_token=None)
        clock.advance(60)
        run = await client.get_run(run_id)
        output = await client.get_run_output(run.tasks[0].run_id)

    assert "42" == output.notebook_result
    assert run.state.is_successful


@pytest.mark.asyncio
async def test_list_runs_pages_newest_first_and_filters_active(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """list_runs honours limit/page_token and active_only."""
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        ids = [
            await client.submit_run({"tasks": [notebook_task("a")]}, idempotency_token=None) for _ in range(3)
        ]
        emulator.finish_run(ids[0], result_state="SUCCESS")
        first = await client.list_runs(limit=2)
        second = await client.list_runs(limit=2, page_token=first.next_page_token)
        active = await client.list_runs(active_only=True)

    assert [ids[2], ids[1]] == [run.run_id for run in first.runs]
    assert first.has_more
    assert [ids[0]] == [run.run_id for run in second.runs]
    assert not second.has_more
    assert {ids[1], ids[2]} == {run.run_id for run in active.runs}


@pytest.mark.asyncio
async def test_list_runs_rejects_contradictory_filters_before_any_request(pat: SdkHeaderProvider) -> None:
    """Contradictory filters, a limit outside 1..25 or an unknown run_type are local ValueErrors."""
    async with DatabricksClient("https://unused.example", pat) as client:
        with pytest.raises(ValueError, match="mutually exclusive"):
            await client.list_runs(active_only=True, completed_only=True)
        with pytest.raises(ValueError, match=r"1\.\.25"):
            await client.list_runs(limit=26)
        with pytest.raises(ValueError, match="run_type must be one of JOB_RUN"):
            await client.list_runs(run_type="NIGHTLY_RUN")


@pytest.mark.asyncio
async def test_too_long_idempotency_token_is_rejected_locally(pat: SdkHeaderProvider) -> None:
    """Databricks caps tokens at 64 characters; the client says so before sending anything."""
    async with DatabricksClient("https://unused.example", pat) as client:
        with pytest.raises(ValueError, match=r"1\.\.64 characters, got 65"):
            await client.submit_run({"tasks": []}, idempotency_token="x" * 65)


@pytest.mark.asyncio
async def test_bad_request_is_an_api_error_and_not_retried(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """A 400 for a malformed spec surfaces at once, with Databricks' error_code and message."""
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        with pytest.raises(ApiError) as excinfo:
            await client.submit_run({"tasks": [{"notebook_task": {}}]}, idempotency_token="bad-spec")

    assert 400 == excinfo.value.status
    assert "INVALID_PARAMETER_VALUE" == excinfo.value.error_code
    assert "task_key" in excinfo.value.message
    assert 1 == emulator.counters().requests_by_endpoint["runs/submit"]


@pytest.mark.asyncio
async def test_get_run_merges_every_page_of_a_run_with_250_tasks(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """API 2.2 pages ``tasks`` 100 at a time; get_run follows next_page_token and returns all 250."""
    tasks = [{"task_key": f"t{index:03d}", "notebook_task": {"notebook_path": "/x"}} for index in range(250)]
    job_id = await create_job(emulator_url, emulator.token, {"name": "wide", "tasks": tasks})
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.run_now(job_id)
        before = emulator.counters().requests_by_endpoint.get("runs/get", 0)
        run = await client.get_run(run_id)

    assert [task["task_key"] for task in tasks] == [task.task_key for task in run.tasks]
    assert 250 == len({task.run_id for task in run.tasks})
    assert 3 == emulator.counters().requests_by_endpoint["runs/get"] - before


@pytest.mark.asyncio
async def test_run_now_sends_its_request_fields_and_returns_the_new_run(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """run_now starts the job with the given request fields; the same token gives the same run."""
    job_id = await create_job(emulator_url, emulator.token, {"name": "param", "tasks": [notebook_task("a")]})
    fields = {"job_parameters": {"day": "2025-01-01"}}
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        run_id = await client.run_now(job_id, parameters=fields, idempotency_token="p-1")
        again = await client.run_now(job_id, parameters=fields, idempotency_token="p-1")
        run = await client.get_run(run_id)
        with pytest.raises(ValueError, match="pass job_id as arguments"):
            await client.run_now(job_id, parameters={"job_id": 1})

    assert run_id == again
    assert job_id == run.job_id
    assert 1 == emulator.counters().runs_submitted
    assert [("day", "2025-01-01")] == [
        (parameter["name"], parameter.get("value"))
        for parameter in emulator.get_run(run_id)["job_parameters"]
    ]


@pytest.mark.asyncio
async def test_find_job_id_resolves_a_unique_name_and_refuses_missing_or_ambiguous_ones(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """A unique name gives its id; none or several raise JobLookupError listing the candidates."""
    unique = await create_job(emulator_url, emulator.token, {"name": "unique", "tasks": [notebook_task("a")]})
    twins = [
        await create_job(emulator_url, emulator.token, {"name": "twin", "tasks": [notebook_task("a")]})
        for _ in range(2)
    ]
    async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
        found = await client.find_job_id("unique")
        with pytest.raises(JobLookupError) as missing:
            await client.find_job_id("nope")
        with pytest.raises(JobLookupError) as ambiguous:
            await client.find_job_id("twin")

    assert unique == found
    assert () == missing.value.job_ids
    assert "no Databricks job is named 'nope'" in str(missing.value)
    assert tuple(twins) == ambiguous.value.job_ids
    assert "pass job_id" in str(ambiguous.value)

"""Run lifecycles driven by the clock: phases, outcomes, cancel, timeout, scripting, repair, delete."""

from __future__ import annotations

import pytest
from emulator_testkit import Api, task

from resumable_triggers.testing import Emulator, EmulatorFactory, ManualClock, UnknownRunError


@pytest.mark.asyncio
async def test_run_moves_pending_running_terminating_terminated_on_the_clock(
    api: Api, clock: ManualClock
) -> None:
    """A 10 s run is PENDING for 1 s, RUNNING until 9 s, TERMINATING until 10 s, then TERMINATED."""
    run_id = await api.submit()
    seen = []
    for step in (0.0, 0.5, 1.0, 7.0, 0.5, 1.0):
        clock.advance(step)
        run = await api.get(run_id)
        seen.append((run["state"]["life_cycle_state"], run["status"]["state"], run["end_time"] == 0))
    assert [
        ("PENDING", "PENDING", True),
        ("PENDING", "PENDING", True),
        ("RUNNING", "RUNNING", True),
        ("RUNNING", "RUNNING", True),
        ("TERMINATING", "TERMINATING", True),
        ("TERMINATED", "TERMINATED", False),
    ] == seen


@pytest.mark.asyncio
async def test_finished_run_reports_epoch_ms_timings_and_durations(api: Api, clock: ManualClock) -> None:
    """start_time/end_time are epoch ms; a single-task run splits its time into setup/execution/cleanup."""
    started_ms = round(clock() * 1000)
    run_id = await api.submit()
    clock.advance(30)
    run = await api.get(run_id)
    timings = {k: run[k] for k in ("start_time", "end_time", "setup_duration", "execution_duration")}
    timings |= {"cleanup_duration": run["cleanup_duration"], "run_duration": run["run_duration"]}
    assert {
        "start_time": started_ms,
        "end_time": started_ms + 10_000,
        "setup_duration": 1000,
        "execution_duration": 8000,
        "cleanup_duration": 1000,
        "run_duration": 10_000,
    } == timings


@pytest.mark.parametrize(
    ("declared", "expected_state", "expected_status"),
    [
        ("SUCCESS", {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}, ("SUCCESS", "SUCCESS")),
        (
            "FAILED",
            {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
        ),
        (
            "TIMEDOUT",
            {"life_cycle_state": "TERMINATED", "result_state": "TIMEDOUT"},
            ("CANCELED", "CLIENT_ERROR"),
        ),
        (
            "CANCELED",
            {"life_cycle_state": "TERMINATED", "result_state": "CANCELED"},
            ("USER_CANCELED", "SUCCESS"),
        ),
        (
            "INTERNAL_ERROR",
            {"life_cycle_state": "INTERNAL_ERROR", "result_state": "FAILED"},
            ("INTERNAL_ERROR", "INTERNAL_ERROR"),
        ),
        ("SKIPPED", {"life_cycle_state": "SKIPPED"}, ("SKIPPED", "SUCCESS")),
    ],
)
@pytest.mark.asyncio
async def test_declared_outcome_shows_consistently_in_state_and_status(
    api: Api,
    clock: ManualClock,
    declared: str,
    expected_state: dict[str, str],
    expected_status: tuple[str, str],
) -> None:
    """emulator.result_state in base_parameters decides the terminal state; `status` agrees with `state`."""
    run_id = await api.submit(task(result_state=declared))
    clock.advance(10)
    run = await api.get(run_id)
    state = {k: v for k, v in run["state"].items() if k in ("life_cycle_state", "result_state")}
    details = run["status"]["termination_details"]
    assert (expected_state, "TERMINATED", expected_status) == (
        state,
        run["status"]["state"],
        (details["code"], details["type"]),
    )


@pytest.mark.asyncio
async def test_declared_duration_and_error_come_from_named_parameters_and_parameter_lists(
    api: Api, clock: ManualClock
) -> None:
    """`*_task.named_parameters` and `*_task.parameters` ("key=value") are read like base_parameters."""
    named = {
        "task_key": "wheel",
        "python_wheel_task": {
            "package_name": "p",
            "entry_point": "e",
            "named_parameters": {"emulator.duration_seconds": "20", "emulator.result_state": "FAILED"},
        },
    }
    listed = {
        "task_key": "script",
        "spark_python_task": {"python_file": "x.py", "parameters": ["--v", "emulator.error=disk full"]},
    }
    run_id = await api.submit(named, listed)
    clock.advance(19)
    during = await api.life_cycle(run_id)
    clock.advance(1)
    run = await api.get(run_id)
    outcomes = {t["task_key"]: t["state"].get("result_state") for t in run["tasks"]}
    assert (("TERMINATING", None), ("FAILED", {"wheel": "FAILED", "script": "SUCCESS"})) == (
        during,
        (run["state"]["result_state"], outcomes),
    )


@pytest.mark.asyncio
async def test_timeout_seconds_ends_a_longer_run_timedout(api: Api, clock: ManualClock) -> None:
    """A run declared to take 100 s with timeout_seconds=5 ends TIMEDOUT, flagged as timed out."""
    run_id = await api.submit(task(duration_seconds="100"), timeout_seconds=5)
    clock.advance(5)
    terminating = await api.life_cycle(run_id)
    clock.advance(10)
    state = (await api.get(run_id))["state"]
    assert (("TERMINATING", None), ("TERMINATED", "TIMEDOUT", True)) == (
        terminating,
        (state["life_cycle_state"], state["result_state"], state["user_cancelled_or_timedout"]),
    )


@pytest.mark.asyncio
async def test_cancel_passes_through_terminating_then_ends_canceled_user_canceled(
    api: Api, clock: ManualClock
) -> None:
    """runs/cancel returns {} at once; the run is TERMINATING, then CANCELED with USER_CANCELED."""
    run_id = await api.submit()
    clock.advance(2)
    answer = await api.ok("POST", "runs/cancel", json={"run_id": run_id})
    right_after = await api.life_cycle(run_id)
    clock.advance(1)
    run = await api.get(run_id)
    assert ({}, ("TERMINATING", None), ("CANCELED", "USER_CANCELED")) == (
        answer,
        right_after,
        (run["state"]["result_state"], run["status"]["termination_details"]["code"]),
    )


@pytest.mark.asyncio
async def test_cancel_of_a_finished_run_changes_nothing(api: Api, clock: ManualClock) -> None:
    """Cancelling a run that already succeeded answers {} and leaves it SUCCESS."""
    run_id = await api.submit()
    clock.advance(10)
    answer = await api.ok("POST", "runs/cancel", json={"run_id": run_id})
    assert ({}, ("TERMINATED", "SUCCESS")) == (answer, await api.life_cycle(run_id))


@pytest.mark.asyncio
async def test_cancel_all_cancels_every_active_run_of_a_job(api: Api, clock: ManualClock) -> None:
    """runs/cancel-all with a job_id cancels that job's active runs only."""
    job_id = (await api.ok("POST", "jobs/create", json={"name": "j", "tasks": [task()]}))["job_id"]
    first = (await api.ok("POST", "run-now", json={"job_id": job_id}))["run_id"]
    second = (await api.ok("POST", "run-now", json={"job_id": job_id}))["run_id"]
    other = await api.submit()
    await api.ok("POST", "runs/cancel-all", json={"job_id": job_id})
    clock.advance(1)
    states = [(await api.life_cycle(r))[1] for r in (first, second, other)]
    assert ["CANCELED", "CANCELED", None] == states


@pytest.mark.asyncio
async def test_run_ids_are_distinct_int64_and_page_urls_follow_the_workspace_format(api: Api) -> None:
    """Parent and task run ids differ and exceed int32; run_page_url is {host}/?o={ws}#job/{job}/run/{run}."""
    run_id = await api.submit(task("a"), task("b"))
    run = await api.get(run_id)
    ids = [run_id, *(t["run_id"] for t in run["tasks"])]
    assert (3, True, f"{api.url}/?o=1234567890123456#job/{run['job_id']}/run/{run_id}", run_id) == (
        len(set(ids)),
        all(2**31 < i < 2**53 for i in ids),
        run["run_page_url"],
        run["number_in_job"],
    )


@pytest.mark.asyncio
async def test_submitted_run_reports_its_type_creator_and_first_attempt(api: Api) -> None:
    """A one-time run is SUBMIT_RUN by the emulator's user, attempt 0, with a job_id of its own."""
    first, second = await api.get(await api.submit()), await api.get(await api.submit())
    assert ("SUBMIT_RUN", "emulator@example.com", 0, True) == (
        first["run_type"],
        first["creator_user_name"],
        first["attempt_number"],
        first["job_id"] != second["job_id"],
    )


@pytest.mark.asyncio
async def test_queue_enabled_run_starts_queued(api: Api, clock: ManualClock) -> None:
    """With queue.enabled the run is QUEUED (with queue_details) before PENDING."""
    run_id = await api.submit(queue={"enabled": True})
    run = await api.get(run_id)
    clock.advance(0.6)
    assert ("QUEUED", "QUEUED", True, "PENDING") == (
        run["state"]["life_cycle_state"],
        run["status"]["state"],
        "queue_details" in run["status"],
        (await api.life_cycle(run_id))[0],
    )


@pytest.mark.asyncio
async def test_script_run_changes_the_outcome_and_duration_of_a_running_run(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """script_run on a RUNNING run makes it fail with the scripted error after the scripted duration."""
    run_id = await api.submit()
    clock.advance(2)
    emulator.script_run(run_id, result_state="FAILED", duration_seconds=30, error="boom")
    clock.advance(20)
    still_running = await api.life_cycle(run_id)
    clock.advance(10)
    run = await api.get(run_id)
    output = await api.ok("GET", "runs/get-output", params={"run_id": run["tasks"][0]["run_id"]})
    assert (("RUNNING", None), "FAILED", "boom") == (
        still_running,
        run["state"]["result_state"],
        output["error"],
    )


@pytest.mark.asyncio
async def test_script_run_never_moves_the_end_into_the_past(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """Scripting a shorter duration than already elapsed ends the run now, not earlier."""
    run_id = await api.submit()
    clock.advance(5)
    emulator.script_run(run_id, duration_seconds=1)
    run = await api.get(run_id)
    assert ("TERMINATED", round(clock() * 1000)) == (run["state"]["life_cycle_state"], run["end_time"])


def test_script_run_of_a_finished_or_unknown_run_is_refused(emulator: Emulator, clock: ManualClock) -> None:
    """A finished run cannot be scripted (ValueError); an unknown id raises UnknownRunError."""
    run_id = emulator._workspace.create_run(
        clock(), task_specs=[task()], run_name="r", run_type="SUBMIT_RUN"
    ).run_id
    clock.advance(10)
    with pytest.raises(ValueError, match="already terminated"):
        emulator.script_run(run_id, result_state="FAILED")
    with pytest.raises(UnknownRunError, match="Run 7 does not exist"):
        emulator.script_run(7)


@pytest.mark.asyncio
async def test_finish_run_terminates_now_with_the_given_outcome(api: Api, emulator: Emulator) -> None:
    """finish_run ends a PENDING run immediately with INTERNAL_ERROR and the given message."""
    run_id = await api.submit()
    emulator.finish_run(run_id, result_state="INTERNAL_ERROR", error="control plane down")
    state = (await api.get(run_id))["state"]
    assert ("INTERNAL_ERROR", "control plane down") == (state["life_cycle_state"], state["state_message"])


@pytest.mark.asyncio
async def test_default_outcome_applies_to_runs_created_afterwards(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """set_default_outcome changes later runs (duration and result), not earlier ones."""
    before = await api.submit()
    emulator.set_default_outcome(result_state="FAILED", duration_seconds=2, error="default failure")
    after = await api.submit()
    clock.advance(2)
    assert (("RUNNING", None), ("TERMINATED", "FAILED")) == (
        await api.life_cycle(before),
        await api.life_cycle(after),
    )


@pytest.mark.asyncio
async def test_multi_task_parent_takes_the_worst_task_outcome_and_names_it(
    api: Api, clock: ManualClock
) -> None:
    """One failing task of two fails the run; the message names the task; multi-task durations are 0."""
    run_id = await api.submit(task("ok"), task("bad", result_state="FAILED", error="boom"))
    clock.advance(10)
    run = await api.get(run_id)
    assert ("FAILED", "Task bad failed with message: boom.", 0, 10_000) == (
        run["state"]["result_state"],
        run["state"]["state_message"],
        run["execution_duration"],
        run["run_duration"],
    )


@pytest.mark.asyncio
async def test_repair_reruns_failed_tasks_with_new_task_run_ids(api: Api, clock: ManualClock) -> None:
    """Repair of a failed run reruns only the failed task (new run id, attempt 1) and records history."""
    run_id = await api.submit(task("ok"), task("flaky", result_state="FAILED"))
    clock.advance(10)
    before = {t["task_key"]: t["run_id"] for t in (await api.get(run_id))["tasks"]}
    # The spec still says FAILED, so the rerun gets a run-level override making it succeed.
    repair = await api.ok(
        "POST",
        "runs/repair",
        json={
            "run_id": run_id,
            "rerun_all_failed_tasks": True,
            "notebook_params": {"emulator.result_state": "SUCCESS"},
        },
    )
    during = await api.life_cycle(run_id)
    clock.advance(10)
    run = await api.get(run_id, include_history="true")
    after = {t["task_key"]: (t["run_id"], t["attempt_number"]) for t in run["tasks"]}
    assert (
        ("PENDING", None),
        "SUCCESS",
        {"ok": (before["ok"], 0), "flaky": (after["flaky"][0], 1)},
        True,
        ["ORIGINAL", "REPAIR"],
        repair["repair_id"],
    ) == (
        during,
        run["state"]["result_state"],
        after,
        after["flaky"][0] != before["flaky"],
        [h["type"] for h in run["repair_history"]],
        run["repair_history"][1]["id"],
    )


@pytest.mark.asyncio
async def test_second_repair_requires_the_latest_repair_id(api: Api, clock: ManualClock) -> None:
    """After one repair, another repair without latest_repair_id is refused; with it, accepted."""
    run_id = await api.submit(task(result_state="FAILED"))
    clock.advance(10)
    first = await api.ok("POST", "runs/repair", json={"run_id": run_id, "rerun_tasks": ["main"]})
    clock.advance(10)
    refused = await api.call("POST", "runs/repair", json={"run_id": run_id, "rerun_tasks": ["main"]})
    accepted = await api.call(
        "POST",
        "runs/repair",
        json={"run_id": run_id, "rerun_tasks": ["main"], "latest_repair_id": first["repair_id"]},
    )
    assert ((400, "INVALID_PARAMETER_VALUE"), 200) == ((refused[0], refused[1]["error_code"]), accepted[0])


@pytest.mark.asyncio
async def test_repair_of_an_active_run_is_refused(api: Api) -> None:
    """A run in progress cannot be repaired: 400 INVALID_STATE."""
    run_id = await api.submit()
    status, body = await api.call("POST", "runs/repair", json={"run_id": run_id, "rerun_tasks": ["main"]})
    assert (400, "INVALID_STATE") == (status, body["error_code"])


@pytest.mark.asyncio
async def test_delete_refuses_an_active_run_and_removes_a_finished_one(api: Api, clock: ManualClock) -> None:
    """runs/delete of an active run is 400; after it ends the run is gone ("does not exist")."""
    run_id = await api.submit()
    refused = await api.call("POST", "runs/delete", json={"run_id": run_id})
    clock.advance(10)
    await api.ok("POST", "runs/delete", json={"run_id": run_id})
    gone = await api.call("GET", "runs/get", params={"run_id": run_id})
    assert ((400, "INVALID_STATE"), (400, f"Run {run_id} does not exist.")) == (
        (refused[0], refused[1]["error_code"]),
        (gone[0], gone[1]["message"]),
    )


@pytest.mark.asyncio
async def test_finished_runs_disappear_after_the_retention_period(
    clock: ManualClock, databricks_emulator_factory: EmulatorFactory
) -> None:
    """Runs older than retention_seconds after their end are gone from runs/get and runs/list."""
    import aiohttp

    served = databricks_emulator_factory(run_seconds=1, clock=clock, retention_seconds=100)
    async with aiohttp.ClientSession() as session:
        api = Api(session, served.url, served.token)
        run_id = await api.submit()
        clock.advance(100)
        kept = (await api.call("GET", "runs/get", params={"run_id": run_id}))[0]
        clock.advance(1)
        gone = (await api.call("GET", "runs/get", params={"run_id": run_id}))[0]
        listed = await api.ok("GET", "runs/list")
    assert (200, 400, {"has_more": False}) == (kept, gone, listed)


@pytest.mark.asyncio
async def test_get_output_of_a_failed_task_has_error_and_trace(api: Api, clock: ManualClock) -> None:
    """A failed task's runs/get-output carries error and error_trace; a running one has neither."""
    run_id = await api.submit(task(result_state="FAILED", error="division by zero"))
    task_run = (await api.get(run_id))["tasks"][0]["run_id"]
    running = await api.ok("GET", "runs/get-output", params={"run_id": task_run})
    clock.advance(10)
    failed = await api.ok("GET", "runs/get-output", params={"run_id": task_run})
    assert (False, "division by zero", True, task_run) == (
        "error" in running,
        failed["error"],
        failed["error_trace"].endswith("Exception: division by zero"),
        failed["metadata"]["run_id"],
    )


@pytest.mark.asyncio
async def test_get_output_returns_the_declared_notebook_result(api: Api, clock: ManualClock) -> None:
    """emulator.output becomes notebook_output.result of a successful notebook task."""
    run_id = await api.submit(task(output="42 rows"))
    clock.advance(10)
    output = await api.ok("GET", "runs/get-output", params={"run_id": run_id})
    assert {"result": "42 rows", "truncated": False} == output["notebook_output"]


@pytest.mark.asyncio
async def test_get_output_of_a_multi_task_parent_is_the_real_400(api: Api) -> None:
    """runs/get-output of a multi-task parent answers 400 with Databricks' message."""
    run_id = await api.submit(task("a"), task("b"))
    status, body = await api.call("GET", "runs/get-output", params={"run_id": run_id})
    assert (400, "INVALID_PARAMETER_VALUE", True) == (
        status,
        body["error_code"],
        body["message"].startswith("Retrieving the output of runs with multiple tasks is not supported."),
    )


@pytest.mark.asyncio
async def test_runs_get_of_a_task_run_id_returns_that_task_run(api: Api) -> None:
    """runs/get with a task's run id answers that task run, with its parent's job id."""
    run = await api.get(await api.submit(task("a"), task("b")))
    task_run = await api.get(run["tasks"][1]["run_id"])
    assert ("b", run["job_id"], run["run_id"]) == (
        task_run["task_key"],
        task_run["job_id"],
        task_run["parent_run_id"],
    )

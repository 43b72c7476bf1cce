"""Task retries (max_retries, min_retry_interval_millis, retry_on_timeout) and emulator.fail_attempts,
over real HTTP on a stepped clock: each attempt is its own task run, and repairs keep counting."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_testkit import Api, task

from resumable_triggers.testing import Emulator, ManualClock
from resumable_triggers.testing.emulator._retries import UNLIMITED_RETRIES
from resumable_triggers.testing.emulator._scripting import DEFAULT_FAILURE


def retried(key: str = "main", *, retries: int, interval_ms: int = 0, **declared: str) -> dict[str, Any]:
    """A notebook task with ``max_retries`` and ``min_retry_interval_millis`` and ``emulator.*`` keys."""
    return {**task(key, **declared), "max_retries": retries, "min_retry_interval_millis": interval_ms}


def attempts(run: dict[str, Any]) -> list[tuple[str, int, str, str | None]]:
    """(task_key, attempt_number, life_cycle_state, result_state) of each entry of ``tasks[]``."""
    return [
        (t["task_key"], t["attempt_number"], t["state"]["life_cycle_state"], t["state"].get("result_state"))
        for t in run["tasks"]
    ]


async def repair_failed(api: Api, run_id: int, latest: int | None = None) -> int:
    body: dict[str, Any] = {"run_id": run_id, "rerun_all_failed_tasks": True}
    if latest is not None:
        body["latest_repair_id"] = latest
    return int((await api.ok("POST", "runs/repair", json=body))["repair_id"])


# --- emulator.fail_attempts ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fail_attempts_fails_the_first_attempt_and_the_repair_succeeds(
    api: Api, clock: ManualClock
) -> None:
    """emulator.fail_attempts=1 without retries: the run ends FAILED with the given error; a repair of
    the failed tasks (attempt 1) ends SUCCESS, with no override needed."""
    run_id = await api.submit(task(fail_attempts="1", error="flaky source"))
    clock.advance(10)
    failed = await api.get(run_id)
    output = await api.ok("GET", "runs/get-output", params={"run_id": failed["tasks"][0]["run_id"]})
    await repair_failed(api, run_id)
    clock.advance(10)
    repaired = await api.get(run_id)
    assert (
        [("main", 0, "TERMINATED", "FAILED")],
        "flaky source",
        [("main", 1, "TERMINATED", "SUCCESS")],
        "SUCCESS",
    ) == (attempts(failed), output["error"], attempts(repaired), repaired["state"]["result_state"])


@pytest.mark.asyncio
async def test_fail_attempts_without_an_error_uses_the_default_message_and_then_the_result_state(
    api: Api, clock: ManualClock
) -> None:
    """Attempts below fail_attempts fail with DEFAULT_FAILURE; the next ends with emulator.result_state."""
    run_id = await api.submit(task(fail_attempts="1", result_state="TIMEDOUT"))
    clock.advance(10)
    first = await api.ok(
        "GET", "runs/get-output", params={"run_id": (await api.get(run_id))["tasks"][0]["run_id"]}
    )
    await repair_failed(api, run_id)
    clock.advance(10)
    assert (DEFAULT_FAILURE, ("TERMINATED", "TIMEDOUT")) == (first["error"], await api.life_cycle(run_id))


@pytest.mark.parametrize("value", ["-1", "1.5", "once", ""])
@pytest.mark.asyncio
async def test_a_bad_fail_attempts_is_a_400_naming_the_key(api: Api, value: str) -> None:
    """Not an integer >= 0: 400 INVALID_PARAMETER_VALUE naming emulator.fail_attempts; no run is made."""
    status, body = await api.call("POST", "runs/submit", json={"tasks": [task(fail_attempts=value)]})
    assert (400, "INVALID_PARAMETER_VALUE", True) == (
        status,
        body["error_code"],
        body["message"].startswith("emulator.fail_attempts must be an integer >= 0"),
    )


@pytest.mark.asyncio
async def test_fail_attempts_given_at_run_now_applies_to_the_jobs_tasks(api: Api, clock: ManualClock) -> None:
    """emulator.fail_attempts in run-now's job_parameters is read like the other keys."""
    job_id = (await api.ok("POST", "jobs/create", json={"name": "j", "tasks": [task()]}))["job_id"]
    run_id = (
        await api.ok(
            "POST", "run-now", json={"job_id": job_id, "job_parameters": {"emulator.fail_attempts": "1"}}
        )
    )["run_id"]
    clock.advance(10)
    assert ("TERMINATED", "FAILED") == await api.life_cycle(run_id)


# --- task retries --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_failed_attempt_is_retried_after_the_interval_while_the_run_stays_running(
    api: Api, clock: ManualClock
) -> None:
    """max_retries=2, 5 s interval, fail_attempts=1: attempt 0 fails at 10 s, attempt 1 waits for retry
    (the run RUNNING), runs from 15 s and succeeds at 25 s; two task runs, numbered 0 and 1."""
    run_id = await api.submit(retried(retries=2, interval_ms=5000, fail_attempts="1"))
    clock.advance(5)
    running = await api.get(run_id)
    clock.advance(7)
    waiting = await api.get(run_id)
    clock.advance(5)
    retrying = await api.get(run_id)
    clock.advance(8)
    done = await api.get(run_id)
    assert [("main", 0, "RUNNING", None)] == attempts(running)
    assert ("RUNNING", [("main", 0, "TERMINATED", "FAILED"), ("main", 1, "WAITING_FOR_RETRY", None)]) == (
        waiting["state"]["life_cycle_state"],
        attempts(waiting),
    )
    assert ("RUNNING", ("main", 1, "RUNNING", None)) == (
        retrying["state"]["life_cycle_state"],
        attempts(retrying)[1],
    )
    assert ("SUCCESS", [("main", 0, "TERMINATED", "FAILED"), ("main", 1, "TERMINATED", "SUCCESS")]) == (
        done["state"]["result_state"],
        attempts(done),
    )
    assert (2, 15_000) == (
        len({t["run_id"] for t in done["tasks"]}),
        done["tasks"][1]["start_time"] - done["tasks"][0]["start_time"],
    )


@pytest.mark.asyncio
async def test_the_run_is_running_and_terminating_when_its_task_attempts_are(
    api: Api, clock: ManualClock
) -> None:
    """The run's set-up and clean-up are its first and last task attempt's (1 s each of 10 s), not
    shares of the whole 25 s chain: RUNNING at 1.5 s, RUNNING at 23.5 s, TERMINATING at 24.5 s."""
    run_id = await api.submit(retried(retries=1, interval_ms=5000, fail_attempts="1"))
    seen = []
    for step in (1.5, 22, 1):
        clock.advance(step)
        run = await api.get(run_id)
        seen.append((run["state"]["life_cycle_state"], run["tasks"][-1]["state"]["life_cycle_state"]))
    assert [("RUNNING", "RUNNING"), ("RUNNING", "RUNNING"), ("TERMINATING", "TERMINATING")] == seen


@pytest.mark.asyncio
async def test_each_attempts_task_run_answers_get_output_and_runs_get(api: Api, clock: ManualClock) -> None:
    """runs/get-output and runs/get of each attempt's task run id describe that attempt; the retry's
    original_attempt_run_id is the first attempt's task run."""
    run_id = await api.submit(retried(retries=1, fail_attempts="1", error="first try", output="42"))
    clock.advance(20)
    first, second = (t["run_id"] for t in (await api.get(run_id))["tasks"])
    outputs = [await api.ok("GET", "runs/get-output", params={"run_id": i}) for i in (first, second)]
    task_run = await api.get(second)
    assert ("first try", "42", (1, run_id, first)) == (
        outputs[0]["error"],
        outputs[1]["notebook_output"]["result"],
        (task_run["attempt_number"], task_run["parent_run_id"], task_run["original_attempt_run_id"]),
    )


@pytest.mark.asyncio
async def test_the_run_fails_only_when_the_last_allowed_attempt_fails(api: Api, clock: ManualClock) -> None:
    """A task declared FAILED with max_retries=2 makes three attempts; the run is RUNNING until the
    third ends at 30 s, then FAILED."""
    run_id = await api.submit(retried(retries=2, result_state="FAILED"))
    clock.advance(29)
    before = await api.life_cycle(run_id)
    clock.advance(1)
    run = await api.get(run_id)
    assert (("TERMINATING", None), "FAILED", [0, 1, 2]) == (
        before,
        run["state"]["result_state"],
        [t["attempt_number"] for t in run["tasks"]],
    )


@pytest.mark.parametrize(("retry_on_timeout", "expected"), [(True, 2), (False, 1)])
@pytest.mark.asyncio
async def test_a_timed_out_attempt_is_retried_only_with_retry_on_timeout(
    api: Api, clock: ManualClock, retry_on_timeout: bool, expected: int
) -> None:
    """A 10 s attempt with the task's timeout_seconds=5 ends TIMEDOUT; retry_on_timeout decides
    whether max_retries=1 gives it a second attempt."""
    spec = {**retried(retries=1), "timeout_seconds": 5, "retry_on_timeout": retry_on_timeout}
    run_id = await api.submit(spec)
    clock.advance(60)
    run = await api.get(run_id)
    assert (["TIMEDOUT"] * expected, "TIMEDOUT") == (
        [t["state"]["result_state"] for t in run["tasks"]],
        run["state"]["result_state"],
    )


@pytest.mark.asyncio
async def test_unlimited_retries_stop_after_the_documented_cap(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """max_retries=-1 on a task that always fails: UNLIMITED_RETRIES retries, then the run is FAILED."""
    run_id = await api.submit(retried(retries=-1, result_state="FAILED", duration_seconds="1"))
    clock.advance(10 * UNLIMITED_RETRIES)
    run = emulator.get_run(run_id)
    assert (UNLIMITED_RETRIES + 1, "FAILED") == (len(run["tasks"]), run["state"]["result_state"])


@pytest.mark.asyncio
async def test_a_repair_starts_a_new_attempt_that_retries_too_and_history_lists_every_attempt(
    api: Api, clock: ManualClock
) -> None:
    """fail_attempts=3, max_retries=1: attempts 0 and 1 fail (run FAILED); the repair's attempt 2
    fails, its retry 3 succeeds. tasks[] shows the repair's attempts; repair_history names all four."""
    run_id = await api.submit(retried(retries=1, fail_attempts="3"))
    clock.advance(20)
    original = await api.get(run_id)
    repair_id = await repair_failed(api, run_id)
    clock.advance(20)
    run = await api.get(run_id, include_history="true")
    history = [
        (h["type"], len(h["task_run_ids"]), h["state"].get("result_state")) for h in run["repair_history"]
    ]
    assert ("FAILED", [2, 3], "SUCCESS") == (
        original["state"]["result_state"],
        [t["attempt_number"] for t in run["tasks"]],
        run["state"]["result_state"],
    )
    assert ([("ORIGINAL", 2, "FAILED"), ("REPAIR", 2, "SUCCESS")], repair_id) == (
        history,
        run["repair_history"][1]["id"],
    )


@pytest.mark.asyncio
async def test_cancel_while_waiting_for_a_retry_never_starts_it(api: Api, clock: ManualClock) -> None:
    """Cancelled during the retry interval: the waiting attempt is forgotten, the failed one stays."""
    run_id = await api.submit(retried(retries=1, interval_ms=10_000, fail_attempts="1"))
    clock.advance(12)
    await api.ok("POST", "runs/cancel", json={"run_id": run_id})
    clock.advance(30)
    run = await api.get(run_id)
    assert ([("main", 0, "TERMINATED", "FAILED")], "TERMINATED") == (
        attempts(run),
        run["state"]["life_cycle_state"],
    )


@pytest.mark.asyncio
async def test_a_run_timeout_cuts_the_attempts_short(api: Api, clock: ManualClock) -> None:
    """The run's timeout_seconds=15 ends it TIMEDOUT during attempt 1; attempt 2 never starts."""
    run_id = await api.submit(retried(retries=5, result_state="FAILED"), timeout_seconds=15)
    clock.advance(60)
    run = await api.get(run_id)
    assert ([("main", 0, "TERMINATED", "FAILED"), ("main", 1, "TERMINATED", "TIMEDOUT")], "TIMEDOUT") == (
        attempts(run),
        run["state"]["result_state"],
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"max_retries": -2},
        {"min_retry_interval_millis": -1},
        {"max_retries": "many"},
        {"retry_on_timeout": "yes"},
    ],
)
@pytest.mark.asyncio
async def test_bad_retry_fields_are_refused_with_400(api: Api, fields: dict[str, Any]) -> None:
    """Values a workspace refuses, or the wrong JSON type, answer 400 naming the field."""
    status, body = await api.call("POST", "runs/submit", json={"tasks": [{**task(), **fields}]})
    assert (400, True) == (status, next(iter(fields)) in body["message"])


# --- the control surface -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_script_run_fail_attempts_fails_the_run_and_counts_for_its_repairs(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """script_run(fail_attempts=2) on a running run: attempt 0 fails, the first repair fails, the
    second repair succeeds."""
    run_id = await api.submit(task())
    emulator.script_run(run_id, fail_attempts=2)
    clock.advance(10)
    states = [await api.life_cycle(run_id)]
    latest = None
    for _ in range(2):
        latest = await repair_failed(api, run_id, latest)
        clock.advance(10)
        states.append(await api.life_cycle(run_id))
    assert [("TERMINATED", "FAILED"), ("TERMINATED", "FAILED"), ("TERMINATED", "SUCCESS")] == states


@pytest.mark.asyncio
async def test_script_run_on_a_retried_task_makes_its_current_attempt_the_last(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """Scripted SUCCESS during attempt 0 of a task planned to fail and retry: no retry follows and the
    run ends when attempt 0 would have."""
    run_id = await api.submit(retried(retries=3, fail_attempts="2"))
    clock.advance(5)
    emulator.script_run(run_id, "SUCCESS")
    clock.advance(5)
    run = await api.get(run_id)
    assert [("main", 0, "TERMINATED", "SUCCESS")] == attempts(run)


@pytest.mark.parametrize("value", [-1, True, 1.5])
@pytest.mark.asyncio
async def test_script_run_refuses_a_fail_attempts_that_is_not_a_count(
    api: Api, emulator: Emulator, value: Any
) -> None:
    """fail_attempts must be an integer >= 0: ValueError naming it."""
    run_id = await api.submit(task())
    with pytest.raises(ValueError, match=r"^fail_attempts must be an integer >= 0"):
        emulator.script_run(run_id, fail_attempts=value)

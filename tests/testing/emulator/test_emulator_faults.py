"""Injected faults, rate limits, counters and the request log."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from emulator_testkit import Api, task

from resumable_triggers.testing import Emulator, EmulatorFactory, ManualClock, RequestRecord


@pytest.mark.asyncio
async def test_http_error_fault_answers_503_with_retry_after_then_serves_normally(
    api: Api, emulator: Emulator
) -> None:
    """An http_error fault answers the next request 503 + Retry-After, without applying it; then normal."""
    emulator.inject_fault(endpoint="runs/submit", kind="http_error", status=503, retry_after_seconds=7)
    async with api.session.post(
        f"{api.url}/api/2.2/jobs/runs/submit",
        json={"tasks": [task()]},
        headers={"Authorization": f"Bearer {api.token}"},
    ) as response:
        faulted = (
            response.status,
            response.headers.get("Retry-After"),
            (await response.json())["error_code"],
        )
    created_by_fault = emulator.counters().runs_submitted
    await api.submit()
    assert ((503, "7", "TEMPORARILY_UNAVAILABLE"), 0, 1) == (
        faulted,
        created_by_fault,
        emulator.counters().runs_submitted,
    )


@pytest.mark.asyncio
async def test_fault_count_and_endpoint_are_respected(api: Api, emulator: Emulator) -> None:
    """count=2 on runs/get faults exactly two runs/get requests and no runs/list request."""
    run_id = await api.submit()
    emulator.inject_fault(endpoint="runs/get", kind="http_error", status=500, count=2)
    listed = (await api.call("GET", "runs/list"))[0]
    gets = [(await api.call("GET", "runs/get", params={"run_id": run_id}))[0] for _ in range(3)]
    assert (200, [500, 500, 200]) == (listed, gets)


@pytest.mark.asyncio
async def test_fault_for_any_endpoint_hits_the_next_request(api: Api, emulator: Emulator) -> None:
    """endpoint=None faults whatever request comes next."""
    emulator.inject_fault(endpoint=None, kind="http_error", status=502)
    assert (502, 200) == ((await api.call("GET", "runs/list"))[0], (await api.call("GET", "runs/list"))[0])


@pytest.mark.asyncio
async def test_drop_closes_the_connection_without_creating_the_run(api: Api, emulator: Emulator) -> None:
    """A dropped submit reaches the client as a disconnect, and no run exists afterwards."""
    emulator.inject_fault(endpoint="runs/submit", kind="drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "runs/submit", json={"tasks": [task()]})
    assert (0, None) == (emulator.counters().runs_submitted, emulator.request_log[-1].status)


@pytest.mark.asyncio
async def test_lose_response_creates_the_run_and_a_retry_with_the_token_gets_it(
    api: Api, emulator: Emulator
) -> None:
    """ "lose_response" applies the submit then disconnects; the retry with the same token finds the run."""
    emulator.inject_fault(endpoint="runs/submit", kind="lose_response")
    spec = {"tasks": [task()], "idempotency_token": "retry-me"}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "runs/submit", json=spec)
    created = [r["run_id"] for r in emulator.runs()]
    retried = await api.ok("POST", "runs/submit", json=spec)
    assert (1, created, "lose_response") == (
        emulator.counters().runs_submitted,
        [retried["run_id"]],
        emulator.request_log[0].fault,
    )


@pytest.mark.asyncio
async def test_hold_applies_the_request_and_answers_only_when_released(api: Api, emulator: Emulator) -> None:
    """A held submit has created its run while the client still waits; release_held lets it answer."""
    emulator.inject_fault(endpoint="runs/submit", kind="hold")
    pending = asyncio.ensure_future(api.call("POST", "runs/submit", json={"tasks": [task()]}))
    # The emulator offers no event for "request applied"; its counter is what a test can observe.
    while emulator.counters().runs_submitted == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    waiting = not pending.done()
    released = emulator.release_held()
    status, body = await pending
    assert (True, 1, 200, emulator.runs()[0]["run_id"]) == (waiting, released, status, body["run_id"])


@pytest.mark.asyncio
async def test_latency_fault_delays_then_serves(api: Api, emulator: Emulator) -> None:
    """A latency fault still answers normally and is recorded in the request log."""
    emulator.inject_fault(endpoint="runs/list", kind="latency", delay_seconds=0.05)
    status, _ = await api.call("GET", "runs/list")
    assert (200, "latency") == (status, emulator.request_log[-1].fault)


def test_inject_fault_refuses_unknown_kinds_and_bad_counts(emulator: Emulator) -> None:
    """Bad fault arguments raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="kind must be one of"):
        emulator.inject_fault(kind="explode")
    with pytest.raises(ValueError, match="count must be an integer >= 1"):
        emulator.inject_fault(count=0)
    with pytest.raises(ValueError, match="status must be an HTTP error status"):
        emulator.inject_fault(status=200)


@pytest.mark.asyncio
async def test_rate_limit_answers_429_with_retry_after_beyond_the_burst(api: Api, emulator: Emulator) -> None:
    """With burst 2 at 0.5 req/s the third runs/get is throttled: 429, Retry-After 2, counted."""
    emulator.set_rate_limit(endpoint="runs/list", requests_per_second=0.5, burst=2)
    answers = []
    for _ in range(3):
        async with api.session.get(
            f"{api.url}/api/2.2/jobs/runs/list", headers={"Authorization": f"Bearer {api.token}"}
        ) as response:
            answers.append((response.status, response.headers.get("Retry-After")))
            body = await response.json()
    other_endpoint = (await api.call("POST", "runs/submit", json={"tasks": [task()]}))[0]
    assert ([(200, None), (200, None), (429, "2")], "REQUEST_LIMIT_EXCEEDED", 1, 200) == (
        answers,
        body["error_code"],
        emulator.counters().throttled,
        other_endpoint,
    )


@pytest.mark.asyncio
async def test_rate_limit_for_all_endpoints_is_shared_and_zero_disables_it(
    api: Api, emulator: Emulator
) -> None:
    """endpoint=None limits all endpoints together; requests_per_second=0 lifts the limit."""
    emulator.set_rate_limit(endpoint=None, requests_per_second=0.1, burst=1)
    limited = [(await api.call("GET", path))[0] for path in ("runs/list", "jobs/list")]
    emulator.set_rate_limit(endpoint=None, requests_per_second=0)
    assert ([200, 429], 200) == (limited, (await api.call("GET", "runs/list"))[0])


@pytest.mark.asyncio
async def test_counters_count_requests_by_endpoint_and_responses_by_status(
    api: Api, emulator: Emulator
) -> None:
    """counters() totals requests per endpoint name and responses per status."""
    run_id = await api.submit()
    await api.call("GET", "runs/get", params={"run_id": run_id})
    await api.call("GET", "runs/get", params={"run_id": 1})
    counters = emulator.counters()
    assert (1, {"runs/submit": 1, "runs/get": 2}, {200: 2, 400: 1}, 0) == (
        counters.runs_submitted,
        dict(counters.requests_by_endpoint),
        dict(counters.responses_by_status),
        counters.throttled,
    )


@pytest.mark.asyncio
async def test_request_log_is_bounded_and_keeps_the_latest(
    clock: ManualClock, databricks_emulator_factory: EmulatorFactory
) -> None:
    """With request_log_size=2 only the last two requests are kept, with method, endpoint, status, run id."""
    served = databricks_emulator_factory(request_log_size=2, clock=clock)
    emulator = served.emulator
    async with aiohttp.ClientSession() as session:
        api = Api(session, served.url, served.token)
        run_id = await api.submit()
        await api.call("GET", "runs/list")
        await api.call("GET", "runs/get", params={"run_id": run_id})
    assert [
        RequestRecord("GET", "runs/list", 200, clock(), None, None),
        RequestRecord("GET", "runs/get", 200, clock(), run_id, None),
    ] == emulator.request_log


@pytest.mark.asyncio
async def test_reset_forgets_runs_faults_limits_and_counters(api: Api, emulator: Emulator) -> None:
    """After reset() the emulator is empty and unfaulted, but credentials still work."""
    run_id = await api.submit()
    emulator.inject_fault(endpoint="runs/list", kind="http_error")
    emulator.set_rate_limit(requests_per_second=0.01, burst=1)
    emulator.reset()
    listed = await api.call("GET", "runs/list")
    gone = (await api.call("GET", "runs/get", params={"run_id": run_id}))[0]
    assert ((200, {"has_more": False}), 400, []) == (listed, gone, emulator.runs())


@pytest.mark.asyncio
async def test_ids_continue_after_reset_so_a_late_cancel_of_a_forgotten_run_hits_nothing(
    api: Api, emulator: Emulator
) -> None:
    """A cancel for a run of before the reset (a trigger's late on_kill in an earlier test) answers
    400 and leaves the new run with a new id running: ids never repeat across resets."""
    old_run = await api.submit()
    emulator.reset()
    new_run = await api.submit()
    late_cancel = (await api.call("POST", "runs/cancel", json={"run_id": old_run}))[0]
    assert (True, 400) == (new_run > old_run, late_cancel)
    assert emulator.get_run(new_run)["state"]["life_cycle_state"] in ("PENDING", "RUNNING")

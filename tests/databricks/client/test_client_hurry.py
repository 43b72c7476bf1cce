"""A hurried call (its caller has seconds left: a SIGTERM waits for its answer) stops backing off.

Against the emulator, with waits injected: a backoff in progress ends the moment the hurry comes, later
waits are at most ``HURRIED_WAIT_SECONDS``, and the request budget no longer paces the call. The
idempotency token is what makes the quick resends safe: they hand back the one run.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from client_testkit import RETRYING, SPEC

from resumable_triggers._hurry import HURRIED_WAIT_SECONDS, Hurry, hurrying
from resumable_triggers.databricks.client import DatabricksClient, SdkHeaderProvider
from resumable_triggers.testing import Emulator, VirtualTime


class BackoffHurriedMidway:
    """A sleep whose backoffs never end by themselves, and which hurries during the first one: a
    SIGTERM arriving while the client backs off. Hurried waits (the short ones) end at once."""

    def __init__(self, hurry: Hurry) -> None:
        self.hurry = hurry
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        if seconds > HURRIED_WAIT_SECONDS:
            asyncio.get_running_loop().call_soon(self.hurry.now)
            await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_hurry_during_the_backoff_of_a_lost_submit_resends_at_once_and_gets_the_same_run(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """The workspace applies the submit and four answers are lost. Hurried during its first backoff,
    the client cuts that wait short and resends every 0.25 s at most: the fifth answer names the one
    run. Without the hurry it would wait 1 + 2 + 4 + 8 s (the backoff here never ends: the test hangs)."""
    emulator.inject_fault(endpoint="runs/submit", kind="lose_response", count=4)
    hurry = Hurry()
    backoff = BackoffHurriedMidway(hurry)
    with hurrying(hurry):
        async with DatabricksClient(
            emulator_url, pat, settings=RETRYING, clock=fake_time.monotonic, sleep=backoff
        ) as client:
            run_id = await client.submit_run(SPEC, idempotency_token="task-1-try-1")
            run = await client.get_run(run_id)

    counters = emulator.counters()
    assert (1, 5, run_id) == (
        counters.runs_submitted,
        counters.requests_by_endpoint["runs/submit"],
        run.run_id,
    )
    assert 1 <= backoff.asked[0] <= 1.5
    assert [HURRIED_WAIT_SECONDS] * 3 == backoff.asked[1:]


@pytest.mark.asyncio
async def test_hurried_call_under_a_429_storm_waits_neither_retry_after_nor_the_budget(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """Retry-After: 10 would pause the client's request budget for 10 s. A hurried call ignores both
    the header and the budget and comes back after the short floor, which still keeps it from
    hammering a workspace that rate-limits it."""
    emulator.inject_fault(
        endpoint="runs/submit", kind="http_error", status=429, retry_after_seconds=10, count=3
    )
    hurry = Hurry()
    hurry.now()
    settings = dataclasses.replace(RETRYING, requests_per_second=1, burst=1)
    with hurrying(hurry):
        async with DatabricksClient(
            emulator_url, pat, settings=settings, clock=fake_time.monotonic, sleep=fake_time.sleep
        ) as client:
            await client.submit_run(SPEC, idempotency_token="task-1-try-1")

    assert (1, 4) == (
        emulator.counters().runs_submitted,
        emulator.counters().requests_by_endpoint["runs/submit"],
    )
    assert [HURRIED_WAIT_SECONDS] * 3 == fake_time.sleeps


@pytest.mark.asyncio
async def test_outside_a_hurry_the_same_storm_is_waited_out(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """The control for the test above: with no hurry, Retry-After and the budget are honoured."""
    emulator.inject_fault(
        endpoint="runs/submit", kind="http_error", status=429, retry_after_seconds=10, count=3
    )
    settings = dataclasses.replace(RETRYING, requests_per_second=1, burst=1)
    async with DatabricksClient(
        emulator_url, pat, settings=settings, clock=fake_time.monotonic, sleep=fake_time.sleep
    ) as client:
        await client.submit_run(SPEC, idempotency_token="task-1-try-1")

    assert 3 * 10 <= sum(fake_time.sleeps)

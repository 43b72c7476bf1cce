"""RunWatcher: runs that left the active set, confirmed by pages of completed runs where that is cheaper.

As in ``test_watcher``: the emulator on a ManualClock over real HTTP, the watcher on ``SteppedTime``
(``await time.step()`` is one sweep), requests counted at the emulator. The watched runs are the
emulator's "foreign" runs, which started a minute apart: each window of 25 runs that ended spans
start times no other ended run shares, as in a triggerer whose tasks started at different times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from client_testkit import SteppedTime, next_of, requests, stepped, watching

from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    ResultState,
    RunNotFound,
    SdkHeaderProvider,
)
from resumable_triggers.testing import Emulator, ManualClock

pytestmark = pytest.mark.timeout(60)

TOKEN = "dapi-emulator-token"


@pytest_asyncio.fixture
async def client(emulator_url: str, pat: SdkHeaderProvider) -> AsyncIterator[DatabricksClient]:
    async with DatabricksClient(
        emulator_url, pat, settings=ClientSettings(requests_per_second=1000, retry_budget_seconds=0)
    ) as c:
        yield c


def counts(emulator: Emulator) -> tuple[int, int]:
    return requests(emulator, "runs/list"), requests(emulator, "runs/get")


@pytest.mark.asyncio
async def test_200_of_1000_runs_ending_in_one_interval_cost_8_pages_and_a_runs_get_per_failure(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """1,000 watched runs, 200 of them ending (10 FAILED) before the second sweep: it lists the 800
    active ones (32 pages) and confirms the 200 in 8 pages of completed runs; only the 10 failed
    runs get a runs/get (for their tasks). Asking for each would have cost 200 runs/gets."""
    run_ids = emulator.add_foreign_runs(1000, active=True)
    ended = run_ids[::5]
    failed = set(ended[::20])
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        first = counts(emulator)
        for run_id in ended:
            emulator.finish_run(run_id, result_state="FAILED" if run_id in failed else "SUCCESS")
        await time.step()
        finals = {w.run_id: await next_of(w) for w in watches if w.run_id in set(ended)}

    assert (40, 0) == first
    assert (40 + 32 + 8, 10) == counts(emulator)
    assert {i: ResultState.FAILED if i in failed else ResultState.SUCCESS for i in ended} == {
        i: run.state.result_state for i, run in finals.items()
    }
    # The failed runs' snapshots come from runs/get, tasks and all; the listing carries none.
    assert {i: (["main"] if i in failed else []) for i in ended} == {
        i: [t.task_key for t in run.tasks] for i, run in finals.items()
    }


@pytest.mark.asyncio
async def test_a_failed_run_still_gets_its_runs_get_and_a_successful_one_none(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """Of two runs ending together, the successful one is confirmed by the page of completed runs
    alone; the failed one, shown on that page too, is asked for with runs/get, for its tasks."""
    run_ids = emulator.add_foreign_runs(3, active=True)
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        emulator.finish_run(run_ids[0])
        emulator.finish_run(run_ids[1], result_state="FAILED", error="disk full")
        await time.step()
        ok, failed, _ = await asyncio.gather(*(next_of(w) for w in watches))

    assert (ResultState.SUCCESS, ()) == (ok.state.result_state, ok.tasks)
    assert (ResultState.FAILED, ["main"]) == (failed.state.result_state, [t.task_key for t in failed.tasks])
    # Sweep 1: one active page. Sweep 2: one active page, one page of completed runs; one runs/get.
    assert (3, 1) == counts(emulator)


@pytest.mark.asyncio
async def test_a_run_deleted_between_listings_still_ends_in_run_not_found(
    emulator: Emulator, emulator_url: str, client: DatabricksClient
) -> None:
    """A watched run that finishes and is deleted before the next sweep is in neither listing: the
    runs/get that follows says RunNotFound, which ends its watch as before; the other run of its
    window is confirmed by the listing."""
    run_ids = emulator.add_foreign_runs(3, active=True)
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        emulator.finish_run(run_ids[0])
        emulator.finish_run(run_ids[1])
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{emulator_url}/api/2.2/jobs/runs/delete",
                json={"run_id": run_ids[1]},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response,
        ):
            response.raise_for_status()
        await time.step()
        ok = await next_of(watches[0])
        with pytest.raises(RunNotFound) as caught:
            await next_of(watches[1])
        with pytest.raises(StopAsyncIteration):
            await anext(watches[1])

    assert ResultState.SUCCESS == ok.state.result_state
    assert run_ids[1] == caught.value.run_id
    assert (3, 1) == counts(emulator)


@pytest.mark.asyncio
async def test_a_window_crowded_with_other_finished_runs_falls_back_to_runs_get(
    emulator: Emulator, clock: ManualClock, client: DatabricksClient
) -> None:
    """Three watched runs ending together, with 200 other finished runs started between the newest
    and the other two: the window's listing stops at the page that saved nothing (one request over
    asking for each), the two it did not reach are asked for, and the next sweep asks for each run
    that ended without listing completed runs at all."""
    days = {"emulator.duration_seconds": str(10 * 86_400)}
    long_run = {
        "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/x", "base_parameters": days}}]
    }

    async def submit(count: int) -> list[int]:
        ids = [await client.submit_run(long_run, idempotency_token=None) for _ in range(count)]
        clock.advance(1)
        return ids

    older = await submit(2)
    for other in await submit(200):
        emulator.finish_run(other)
    [newest] = await submit(1)
    later = await submit(2)
    time = SteppedTime()
    async with watching(stepped(client, time), [newest, *older, *later]) as watches:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        for run_id in (newest, *older):
            emulator.finish_run(run_id)
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        second = counts(emulator)
        for run_id in later:
            emulator.finish_run(run_id)
        await time.wake()  # the last sweep: with every run finished, the watcher never sleeps again
        finals = await asyncio.gather(*(next_of(w) for w in watches[3:]))

    # Sweep 2: an active page, then 2 pages of completed runs (the newest + 24 others, then 25
    # others) and a runs/get for each of the two older runs.
    assert (1 + 3, 2) == second
    # Sweep 3: an active page, and a runs/get for each of the two that ended.
    assert (1 + 3 + 1, 2 + 2) == counts(emulator)
    assert [ResultState.SUCCESS] * 2 == [run.state.result_state for run in finals]

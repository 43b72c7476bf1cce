"""RunWatcher: many watched runs answered by few requests, against the emulator over real HTTP.

The emulator runs on a ManualClock, so runs change state only when a test says so; the watcher runs on
``SteppedTime``, so it sweeps only when a test steps it (``await time.step()`` is one sweep, over when
it returns). Requests are counted where they arrive: at the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from client_testkit import SteppedTime, eventually, next_of, requests, stepped, watching

from resumable_triggers.databricks.client import (
    ApiError,
    ClientSettings,
    DatabricksClient,
    DatabricksError,
    LifeCycleState,
    ResultState,
    Run,
    RunNotFound,
    RunWatch,
    SdkHeaderProvider,
    WatcherSettings,
    shared_client,
    watch_run,
)
from resumable_triggers.databricks.client._watcher import _shared
from resumable_triggers.testing import Emulator, ManualClock

pytestmark = pytest.mark.timeout(60)

DAY = 86_400.0


@pytest_asyncio.fixture
async def client(emulator_url: str, pat: SdkHeaderProvider) -> AsyncIterator[DatabricksClient]:
    # No retry waits: an injected failure reaches the watches at once.
    async with DatabricksClient(
        emulator_url, pat, settings=ClientSettings(requests_per_second=1000, retry_budget_seconds=0)
    ) as c:
        yield c


async def submit(client: DatabricksClient, count: int, *, days: float = 10) -> list[int]:
    """``count`` one-task runs that last ``days`` of the emulator's (manual) clock."""
    spec = {
        "tasks": [
            {
                "task_key": "main",
                "notebook_task": {
                    "notebook_path": "/x",
                    "base_parameters": {"emulator.duration_seconds": str(days * DAY)},
                },
            }
        ]
    }
    return list(
        await asyncio.gather(*(client.submit_run(spec, idempotency_token=None) for _ in range(count)))
    )


@pytest.mark.asyncio
async def test_one_listing_page_answers_25_watched_runs(emulator: Emulator, client: DatabricksClient) -> None:
    """100 watched active runs cost 4 runs/list pages and not a single runs/get."""
    run_ids = await submit(client, 100)
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        runs = await asyncio.gather(*(next_of(w) for w in watches))

    assert run_ids == [run.run_id for run in runs]
    assert all(not run.state.is_terminal for run in runs)
    assert (4, 0) == (requests(emulator, "runs/list"), requests(emulator, "runs/get"))


@pytest.mark.asyncio
async def test_run_leaving_the_active_set_is_confirmed_once_and_delivered_with_its_tasks(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """A watched run missing from the listing gets one runs/get, whose terminal snapshot (tasks and
    all) ends that watch; the runs still listed cost no runs/get."""
    run_ids = await submit(client, 30)
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        emulator.finish_run(run_ids[3], result_state="FAILED", error="disk full")
        await time.step()
        final = await next_of(watches[3])
        with pytest.raises(StopAsyncIteration):
            await anext(watches[3])
        await asyncio.gather(*(next_of(w) for i, w in enumerate(watches) if i != 3))

    assert (LifeCycleState.TERMINATED, ResultState.FAILED) == (
        final.state.life_cycle_state,
        final.state.result_state,
    )
    assert ["main"] == [task.task_key for task in final.tasks]
    assert 1 == requests(emulator, "runs/get")


@pytest.mark.asyncio
async def test_many_foreign_active_runs_make_the_watcher_ask_per_run(
    emulator: Emulator, clock: ManualClock, client: DatabricksClient
) -> None:
    """When the watched runs sit behind pages of other users' active runs, the first sweep stops
    listing after a few pages and asks for each run; later sweeps ask per run without listing."""
    run_ids = await submit(client, 6)
    clock.advance(DAY)
    emulator.add_foreign_runs(count=2000, active=True)  # ~1440 of them started after ours
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        listed_first = requests(emulator, "runs/list")
        for _ in range(2):
            await time.step()
            await asyncio.gather(*(next_of(w) for w in watches))

    assert 3 == listed_first  # len(run_ids) // 2 pages at most, far fewer than the ~58 to reach them
    assert (3, 18) == (requests(emulator, "runs/list"), requests(emulator, "runs/get"))


@pytest.mark.asyncio
async def test_listing_is_tried_again_after_a_few_sweeps_of_asking_per_run(
    emulator: Emulator, clock: ManualClock, client: DatabricksClient
) -> None:
    """Foreign runs come and go: after ``reprobe_every_sweeps`` sweeps of runs/get per run, the
    watcher probes the listing again (and, with the foreign runs still there, goes back to asking)."""
    run_ids = await submit(client, 6)
    clock.advance(DAY)
    emulator.add_foreign_runs(count=2000, active=True)
    time = SteppedTime()
    watcher = stepped(client, time, WatcherSettings(coalesce_seconds=0.05, reprobe_every_sweeps=2))
    async with watching(watcher, run_ids) as watches:
        for _ in range(4):
            await time.step()
            await asyncio.gather(*(next_of(w) for w in watches))

    # Sweeps 1 and 3 probe (3 pages each), sweeps 2 and 4 ask per run; every sweep asks for all 6.
    assert (6, 24) == (requests(emulator, "runs/list"), requests(emulator, "runs/get"))
    assert 4 == watcher.stats.sweeps


@pytest.mark.asyncio
async def test_unknown_run_raises_run_not_found_once_then_ends(client: DatabricksClient) -> None:
    """A run the workspace does not know (deleted, aged out) is reported as RunNotFound, and then the
    watch ends instead of asking again."""
    time = SteppedTime()
    async with stepped(client, time).watch(911_999, interval_seconds=30) as watch:
        await time.wake()
        with pytest.raises(RunNotFound) as caught:
            await next_of(watch)
        with pytest.raises(StopAsyncIteration):
            await anext(watch)

    assert 911_999 == caught.value.run_id


@pytest.mark.asyncio
async def test_a_failed_listing_reaches_every_due_watch_which_then_carries_on(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """An error listing runs is raised from every watch that was due (so each caller's error budget
    decides), and the next sweep delivers snapshots again."""
    run_ids = await submit(client, 8)
    emulator.inject_fault(endpoint="runs/list", kind="http_error", status=400, count=1)
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        errors = await asyncio.gather(*(next_of(w) for w in watches), return_exceptions=True)
        await time.step()
        runs = await asyncio.gather(*(next_of(w) for w in watches))

    assert [400] * 8 == [e.status if isinstance(e, ApiError) else e for e in errors]
    assert run_ids == [run.run_id for run in runs]


@pytest.mark.asyncio
async def test_a_failed_confirmation_reaches_only_that_runs_watch(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """A runs/get that fails is raised from the watch of that run only."""
    run_ids = await submit(client, 4)
    time = SteppedTime()
    async with watching(stepped(client, time), run_ids) as watches:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in watches))
        emulator.finish_run(run_ids[0])
        emulator.inject_fault(endpoint="runs/get", kind="http_error", status=500, count=1)
        await time.step()
        outcomes = await asyncio.gather(*(next_of(w) for w in watches), return_exceptions=True)
        await time.step()
        final = await next_of(watches[0])

    assert isinstance(outcomes[0], DatabricksError)
    assert all(isinstance(o, Run) for o in outcomes[1:])
    assert (LifeCycleState.TERMINATED, ResultState.SUCCESS) == (
        final.state.life_cycle_state,
        final.state.result_state,
    )


@pytest.mark.asyncio
async def test_two_watches_of_one_run_share_every_snapshot(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """A run watched twice (an old trigger draining while the retried task's trigger starts) is
    polled once per sweep, and both watches see the terminal snapshot."""
    [run_id] = await submit(client, 1)
    time = SteppedTime()
    async with watching(stepped(client, time), [run_id, run_id]) as (first, second):
        await time.step()
        await asyncio.gather(next_of(first), next_of(second))
        emulator.finish_run(run_id, result_state="CANCELED")
        await time.wake()
        ends = await asyncio.gather(next_of(first), next_of(second))

    assert [ResultState.CANCELED] * 2 == [run.state.result_state for run in ends]
    assert 1 == len({id(run) for run in ends})


@pytest.mark.asyncio
async def test_watches_with_different_intervals_are_each_polled_in_time(client: DatabricksClient) -> None:
    """A 0.2 s watch and a 1 s watch on one watcher: each sees a snapshot once per its own interval
    (the slow one from the sweeps that list both, which cost no extra request)."""
    run_ids = await submit(client, 4)
    time = SteppedTime()
    watcher = stepped(client, time)
    seen: dict[str, list[float]] = {"fast": [], "slow": []}

    async def read(name: str, watch: RunWatch) -> None:
        async for _ in watch:
            seen[name].append(time.monotonic())

    async with (
        watcher.watch(run_ids[0], interval_seconds=0.2) as fast,
        watcher.watch(run_ids[1], interval_seconds=1.0) as slow,
    ):
        readers = [asyncio.ensure_future(read("fast", fast)), asyncio.ensure_future(read("slow", slow))]
        for _ in range(12):
            await time.step()
        for reader in readers:
            reader.cancel()

    assert pytest.approx([0.05 + 0.2 * i for i in range(12)]) == seen["fast"]
    assert pytest.approx([0.05, 1.05, 2.05]) == seen["slow"]


@pytest.mark.asyncio
async def test_last_watch_leaving_stops_all_polling(emulator: Emulator, client: DatabricksClient) -> None:
    """Once the last watch of the shared watcher ends, its sweeping task is over (so nothing can be
    sent on its behalf) and the loop's registry forgets the watcher."""
    [run_id] = await submit(client, 1)
    async with watch_run(client, run_id, interval_seconds=0.1) as watch:
        await next_of(watch)
        watcher = _shared[client]
        task = watcher._task
    sent = emulator.counters().requests_by_endpoint
    assert task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert (True, sent) == (task.cancelled(), emulator.counters().requests_by_endpoint)
    assert (True, None, False) == (watcher.idle, watcher._task, client in _shared)


@pytest.mark.asyncio
async def test_the_watcher_keeps_the_shared_session_open_for_callers_holding_no_lease(
    emulator_url: str, pat: SdkHeaderProvider
) -> None:
    """A caller may let its shared_client lease go once it has the watch: the watcher leases the
    session while it polls (with no idle grace, any moment unleased would close it), and lets it go
    when the last watch ends."""
    time = SteppedTime()

    def lease() -> contextlib.AbstractAsyncContextManager[DatabricksClient]:
        return shared_client(emulator_url, pat, idle_grace_seconds=0, clock=time.monotonic, sleep=time.sleep)

    async with lease() as client:
        [run_id] = await submit(client, 1)
        watch = watch_run(client, run_id, interval_seconds=30, lease=lease)
    async with watch:
        for _ in range(4):
            await time.step()
            await next_of(watch)
        assert client.session is not None
        assert not client.session.closed
    await eventually(lambda: client.session is None)


def test_loop_shutdown_with_watches_left_ends_cleanly(emulator_url: str, pat: SdkHeaderProvider) -> None:
    """A loop that ends while runs are watched (a triggerer stopping) cancels the sweeping task with
    the rest: nothing pending is destroyed and nothing is logged as lost."""
    errors: list[dict[str, object]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
        time = SteppedTime()
        # As in a triggerer: the shared session outlives every task and closes at loop shutdown.
        async with shared_client(emulator_url, pat, clock=time.monotonic, sleep=time.sleep) as client:
            [run_id] = await submit(client, 1)

            async def watch() -> None:
                async with watch_run(client, run_id, interval_seconds=30) as updates:
                    async for _ in updates:
                        pass

            task = asyncio.ensure_future(watch())
            for _ in range(2):
                await time.step()
            assert not task.done()

    asyncio.run(main())

    assert [] == errors


def test_settings_are_validated_at_construction() -> None:
    """Nonsense settings fail when the watcher is configured, naming the field."""
    with pytest.raises(ValueError, match="get_concurrency"):
        WatcherSettings(get_concurrency=0)
    with pytest.raises(ValueError, match="jitter_fraction"):
        WatcherSettings(jitter_fraction=1.0)


@pytest.mark.asyncio
async def test_a_restarts_first_probe_cut_short_does_not_stop_listing_once_the_other_triggers_arrive(
    emulator: Emulator, client: DatabricksClient
) -> None:
    """A triggerer restart under load: the first sweep sees 10 of 1,000 triggers, whose runs sit 35
    pages down, so its probe (5 pages) stops short and they are asked for. When the other 990 watches
    arrive, twice as many are due: the next sweep probes again and lists all 1,000 in 40 pages,
    instead of asking for each of 990 runs for the next 10 sweeps."""
    run_ids = emulator.add_foreign_runs(1000, active=True)  # newest first
    time = SteppedTime()
    watcher = stepped(client, time)
    async with watching(watcher, run_ids[-10:]) as first:
        await time.step()
        await asyncio.gather(*(next_of(w) for w in first))
        probed = (requests(emulator, "runs/list"), requests(emulator, "runs/get"))
        async with watching(watcher, run_ids[:-10]) as rest:
            # The new watches woke the watcher early: let it drop its old sleep and start the new
            # one (two loop turns), so that the step ends that one and not the stale one.
            for _ in range(3):
                await asyncio.sleep(0)
            await time.step()
            await asyncio.gather(*(next_of(w) for w in rest))

    assert (5, 10) == probed
    assert (5 + 40, 10) == (requests(emulator, "runs/list"), requests(emulator, "runs/get"))

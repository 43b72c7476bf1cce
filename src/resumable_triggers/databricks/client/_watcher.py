"""Many watched runs, few requests: one sweep of ``runs/list`` answers 25 watched runs at once.

A triggerer watching 10,000 runs every 30 s with one ``runs/get`` each sends 333 requests a second.
A ``RunWatcher`` (one per shared client, so one per event loop and workspace identity) instead sweeps
``runs/list?active_only=true`` once per interval and hands every watched run it lists a snapshot. A
watched run that the listing passes without showing has left the active set: one ``runs/get`` confirms
it and brings its terminal snapshot, tasks included (or RunNotFound). When the active set is mostly
runs nobody here watches, paging it would cost more than asking for each run, so the sweep falls back
to one ``runs/get`` per due run, and tries listing again every few sweeps. Every request goes through
the client, so the workspace's shared ``RequestBudget`` paces the lot::

    async with shared_client(host, headers) as client:
        async with watch_run(client, run_id, interval_seconds=30) as updates:
            async for run in updates:  # at least once per interval; ends after a terminal snapshot
                ...

Iterating raises what the request about this run raised (``RunNotFound``, ``DatabricksError``...), so
a caller's own error budget decides what to wait out. The watcher never blocks the loop: a sweep is
one task, pages are parsed 25 runs at a time, and confirmations run concurrently while it pages.

Sharing: two watches of one run (an old trigger draining while a retry's starts) share one record,
and so one poll, and both see every snapshot. Watches with different intervals share the watcher:
each run is due on its own interval, and a listing sweep serves every run it lists, due or not. A
new watch waits at most ``coalesce_seconds`` (a restart's ten thousand share the first sweep). The
sweeping task ends with the last watch, or with the loop: at shutdown it is cancelled like any task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import weakref
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType

from resumable_triggers.databricks.client._client import DatabricksClient
from resumable_triggers.databricks.client._errors import RunNotFound
from resumable_triggers.databricks.client._models import Run

__all__ = ["RunWatch", "RunWatcher", "WatcherSettings", "WatcherStats", "watch_run"]

logger = logging.getLogger(__name__)

PAGE_SIZE = 25  # the most runs/list returns per page


@dataclass(frozen=True, slots=True, kw_only=True)
class WatcherSettings:
    """How a ``RunWatcher`` schedules its sweeps. The defaults suit a triggerer; tests shrink them.

    coalesce_seconds:
        A new watch waits up to this long (at most a quarter of its interval) for its first poll, so
        the thousands of watches a triggerer restart creates share one sweep instead of racing.
    jitter_fraction:
        Each sweep comes up to this fraction of the interval early (never late), so triggerers that
        started together drift apart instead of hitting the workspace in lockstep.
    get_concurrency:
        ``runs/get`` requests in flight at once (so at most one more TCP connection than this). The
        request budget paces them anyway; 8 in flight sustain 25+ requests a second even at a real
        workspace's 300 ms per request, more than any sensible budget.
    reprobe_every_sweeps:
        After listing stopped paying off (foreign runs), how many sweeps use ``runs/get`` per run
        before the listing is tried again.
    """

    coalesce_seconds: float = 1.0
    jitter_fraction: float = 0.05
    get_concurrency: int = 8
    reprobe_every_sweeps: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.coalesce_seconds) and self.coalesce_seconds >= 0):
            raise ValueError(f"WatcherSettings.coalesce_seconds must be >= 0, got {self.coalesce_seconds!r}")
        if not 0 <= self.jitter_fraction < 1:
            raise ValueError(
                f"WatcherSettings.jitter_fraction must be within [0, 1), got {self.jitter_fraction!r}"
            )
        for name in ("get_concurrency", "reprobe_every_sweeps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WatcherSettings.{name} must be a whole number >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class WatcherStats:
    """What a watcher has done since it was created (for logs, tests and the benchmark)."""

    watched_runs: int
    sweeps: int
    listing_sweeps: int
    pages: int
    gets: int
    # Pages one full listing of the active set took last time; None before one completed.
    active_pages: int | None


class RunWatch:
    """One caller's watch of one run: an async context manager (the watch lasts as long as the
    block) and an async iterator of ``Run`` snapshots.

    Only the latest snapshot is kept: a slow reader skips intermediate states, never the last one.
    Iteration ends after a terminal snapshot (or after raising RunNotFound); any other error about
    this run is raised once, and the watch carries on at the next sweep unless the caller leaves.
    A plain class rather than a generator-based context manager: a triggerer holds ten thousand.
    """

    __slots__ = ("_done", "_latest", "_waiter", "_watcher", "interval_seconds", "run_id")

    def __init__(self, watcher: RunWatcher, run_id: int, interval_seconds: float) -> None:
        self.run_id = run_id
        self.interval_seconds = interval_seconds
        self._watcher = watcher
        self._latest: Run | BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"RunWatch(run_id={self.run_id}, interval_seconds={self.interval_seconds})"

    async def __aenter__(self) -> RunWatch:
        self._watcher._add(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._watcher._remove(self)

    def __aiter__(self) -> RunWatch:
        return self

    async def __anext__(self) -> Run:
        while self._latest is None:
            if self._done:
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        item, self._latest = self._latest, None
        if isinstance(item, BaseException):
            # One error may be delivered to thousands of watches: each raise starts a fresh
            # traceback instead of growing one shared chain.
            raise item.with_traceback(None)
        return item

    def _put(self, item: Run | BaseException) -> None:
        if self._done:
            return  # the final word was said; a later poll (for another watch) changes nothing
        self._latest = item
        self._done = isinstance(item, RunNotFound) or (isinstance(item, Run) and item.state.is_terminal)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _Watched:
    """The watcher's record of one run id, shared by every watch of that run."""

    __slots__ = ("confirming", "due", "finished", "interval", "key", "run_id", "seen", "since", "watches")

    def __init__(self, run_id: int, interval: float, due: float, sweep: int) -> None:
        self.run_id = run_id
        self.watches: list[RunWatch] = []
        self.interval = interval
        self.due = due  # loop time by which the run must be observed again
        # (start_time_ms, run_id): where runs/list (newest first) shows it; None until first seen.
        self.key: tuple[int, int] | None = None
        self.since = sweep  # the sweep number current when it was added
        self.seen = -1  # the last sweep that listed or confirmed it
        self.confirming = -1  # the last sweep that queued a runs/get for it
        self.finished = False  # a terminal snapshot or RunNotFound was delivered


class RunWatcher:
    """Polls every watched run of one client at least once per its interval, in as few requests as
    it can. Use ``watch_run`` to share the loop's watcher; construct one only for tests or isolation.

    The sweeping task starts with the first watch and is cancelled when the last one leaves. A
    watcher belongs to the event loop of its first watch.
    """

    def __init__(
        self,
        client: DatabricksClient,
        *,
        settings: WatcherSettings | None = None,
        rng: random.Random | None = None,
        lease: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or WatcherSettings()
        # Held while anything is watched (e.g. a shared_client lease on ``client``): the watcher is
        # what uses the session, so the callers need not hold a lease each while they wait.
        self._lease = lease
        self._rng = rng or random.Random()
        self._runs: dict[int, _Watched] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._alarm: asyncio.Future[None] | None = None
        self._alarm_at = math.inf
        self._sweep_no = 0
        self._listing_sweeps = 0
        self._pages = 0
        self._gets = 0
        self._active_pages: int | None = None
        self._get_only_until = 0  # sweep number before which listing is not tried again

    def __repr__(self) -> str:
        return f"RunWatcher({self.client!r}, watched_runs={len(self._runs)})"

    @property
    def stats(self) -> WatcherStats:
        return WatcherStats(
            watched_runs=len(self._runs),
            sweeps=self._sweep_no,
            listing_sweeps=self._listing_sweeps,
            pages=self._pages,
            gets=self._gets,
            active_pages=self._active_pages,
        )

    @property
    def idle(self) -> bool:
        """True when nothing is watched (and so no task is running)."""
        return not self._runs

    def watch(self, run_id: int, *, interval_seconds: float) -> RunWatch:
        """``async with watcher.watch(run_id, interval_seconds=30) as updates``: watch ``run_id``,
        observed at least every ``interval_seconds`` (> 0), until the block ends."""
        if not (math.isfinite(interval_seconds) and interval_seconds > 0):
            raise ValueError(f"interval_seconds must be a finite number > 0, got {interval_seconds!r}")
        return RunWatch(self, int(run_id), float(interval_seconds))

    # ---- registration (synchronous: no await between the checks and the changes) ---------------

    def _add(self, watch: RunWatch) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None or (self._task is None and not self._runs):
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(f"{self!r} belongs to another event loop; use one watcher per loop")
        run_id, interval = watch.run_id, watch.interval_seconds
        due = loop.time() + min(self.settings.coalesce_seconds, interval / 4)
        record = self._runs.get(run_id)
        if record is None:
            record = self._runs[run_id] = _Watched(run_id, interval, due, self._sweep_no)
        else:
            # A second watch of a run someone already watches (a retried task whose old trigger is
            # still draining): same snapshots, the shorter interval, and a prompt first poll.
            record.interval = min(record.interval, interval)
            record.due = min(record.due, due)
            if record.finished:
                record.finished, record.due = False, due
        record.watches.append(watch)
        if self._task is None:
            self._task = loop.create_task(self._run(), name=f"databricks-run-watcher:{self.client.host}")
        elif record.due < self._alarm_at and self._alarm is not None and not self._alarm.done():
            self._alarm.set_result(None)

    def _remove(self, watch: RunWatch) -> None:
        record = self._runs.get(watch.run_id)
        if record is None or watch not in record.watches:
            return
        record.watches.remove(watch)
        if not record.watches:
            del self._runs[watch.run_id]
        elif watch.interval_seconds == record.interval:
            record.interval = min(w.interval_seconds for w in record.watches)
        if not self._runs:
            if self._task is not None:
                # The last watch left: nothing may poll on its behalf any more.
                self._task.cancel()
                self._task = None
            with _shared_lock:
                if _shared.get(self.client) is self:
                    del _shared[self.client]

    # ---- the sweeping task ---------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with self._lease() if self._lease is not None else contextlib.nullcontext():
                while self._runs:
                    wake = min((r.due for r in self._runs.values() if not r.finished), default=math.inf)
                    if wake > loop.time():
                        await self._sleep_until(loop, wake)
                        continue  # watches may have come or gone meanwhile: plan afresh
                    await self._sweep(loop)
        except Exception as exc:
            logger.exception("Databricks run watcher for %s failed; its watches see the error", self.client)
            for record in self._runs.values():
                for watch in record.watches:
                    watch._put(exc)
        finally:
            # However it ended, the next watch added starts a fresh task.
            if self._task is asyncio.current_task():
                self._task = None

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        alarm = self._alarm = loop.create_future()
        self._alarm_at = deadline
        timer = None if deadline == math.inf else loop.call_at(deadline, _ring, alarm)
        try:
            await alarm
        finally:
            if timer is not None:
                timer.cancel()
            self._alarm, self._alarm_at = None, math.inf

    async def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        start = loop.time()
        self._sweep_no += 1
        sweep = self._sweep_no
        due = [r.run_id for r in self._runs.values() if not r.finished and self._is_due(r, start)]
        if not due:
            return
        # Drawn once per sweep: every run polled now is next due a little less than an interval on.
        early = 1.0 - self._rng.uniform(0.0, self.settings.jitter_fraction)
        budget = self._plan(len(due), sweep)
        if budget:
            self._listing_sweeps += 1
            await self._listing_sweep(start, sweep, budget, early)
        else:
            await self._confirm_each(due, start, sweep, early)
        logger.debug(
            "Swept %d due of %d watched runs in %.2f s (%s)",
            len(due),
            len(self._runs),
            loop.time() - start,
            "listing" if budget else "runs/get each",
        )

    def _is_due(self, record: _Watched, now: float) -> bool:
        # Runs due within the coalescing window join this sweep rather than cause another one.
        return record.due <= now + min(self.settings.coalesce_seconds, record.interval / 4)

    def _plan(self, due: int, sweep: int) -> int:
        """How many runs/list pages this sweep may read before asking per run instead; 0: don't list.

        Known to be cheaper than one runs/get per due run: list. Known to be dearer: ask per run for
        ``reprobe_every_sweeps`` sweeps, then probe again (foreign runs come and go). Unknown: probe,
        reading at most half as many pages as per-run requests would cost, so a listing full of
        foreign runs never costs more than 1.5x the per-run price.
        """
        if due < 2 or sweep < self._get_only_until:
            return 0
        if self._active_pages is None:
            return due // 2
        if self._active_pages > due:
            self._get_only_until = sweep + self.settings.reprobe_every_sweeps
            self._active_pages = None
            return 0
        return due

    async def _listing_sweep(self, start: float, sweep: int, budget: int, early: float) -> None:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        workers = [
            self._confirm_worker(queue, start, sweep, early) for _ in range(self.settings.get_concurrency)
        ]
        await asyncio.gather(self._page_through(queue, start, sweep, budget, early), *workers)

    async def _page_through(
        self, queue: asyncio.Queue[int | None], start: float, sweep: int, budget: int, early: float
    ) -> None:
        # Known runs, newest first as runs/list orders them: one the listing has gone past without
        # showing has left the active set, and is confirmed right away rather than after the whole
        # (possibly long) sweep. An order differing from the real one only costs an extra runs/get.
        ordered = sorted(
            (r.key for r in self._runs.values() if r.key is not None and r.since < sweep and not r.finished),
            reverse=True,
        )
        passed = 0
        pages = 0
        token: str | None = None
        complete = False
        try:
            while True:
                page = await self.client.list_runs(active_only=True, limit=PAGE_SIZE, page_token=token)
                pages += 1
                self._pages += 1
                for run in page.runs:
                    record = self._runs.get(run.run_id)
                    # A terminal run in an active listing (a race) is confirmed to get its tasks.
                    if record is not None and not record.finished and not run.state.is_terminal:
                        if run.start_time_ms is not None:
                            record.key = (run.start_time_ms, run.run_id)
                        self._deliver(record, run, start, sweep, early)
                token = page.next_page_token
                if not page.has_more or not token:
                    complete = True
                    break
                last = page.runs[-1] if page.runs else None
                if last is not None and last.start_time_ms is not None:
                    edge = (last.start_time_ms, last.run_id)
                    while passed < len(ordered) and ordered[passed] > edge:
                        self._queue_confirm(queue, ordered[passed][1], sweep)
                        passed += 1
                if pages >= budget:
                    break
            if complete:
                self._active_pages = pages
            else:
                self._active_pages = None
                logger.info(
                    "Listing active runs for %s: %d pages did not reach the watched runs; asking for each "
                    "run for the next %d sweeps",
                    self.client.host,
                    pages,
                    self.settings.reprobe_every_sweeps,
                )
                self._get_only_until = sweep + self.settings.reprobe_every_sweeps
            # Complete: every unseen run has left the active set. Cut short: only the due ones must be
            # asked for now; the rest wait for their own turn.
            for record in list(self._runs.values()):
                if record.since < sweep and (complete or self._is_due(record, start)):
                    self._queue_confirm(queue, record.run_id, sweep)
        except Exception as exc:  # noqa: BLE001 - forwarded, not swallowed: the watches raise it
            for record in self._runs.values():
                if (
                    record.since < sweep
                    and record.seen != sweep
                    and record.confirming != sweep
                    and not record.finished
                    and self._is_due(record, start)
                ):
                    self._fail(record, exc, start, early)
        finally:
            for _ in range(self.settings.get_concurrency):
                queue.put_nowait(None)

    def _queue_confirm(self, queue: asyncio.Queue[int | None], run_id: int, sweep: int) -> None:
        record = self._runs.get(run_id)
        if record is not None and not record.finished and record.seen != sweep and record.confirming != sweep:
            record.confirming = sweep
            queue.put_nowait(run_id)

    async def _confirm_each(self, run_ids: Iterable[int], start: float, sweep: int, early: float) -> None:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        for run_id in run_ids:
            self._queue_confirm(queue, run_id, sweep)
        for _ in range(self.settings.get_concurrency):
            queue.put_nowait(None)
        await asyncio.gather(
            *(self._confirm_worker(queue, start, sweep, early) for _ in range(self.settings.get_concurrency))
        )

    async def _confirm_worker(
        self, queue: asyncio.Queue[int | None], start: float, sweep: int, early: float
    ) -> None:
        while (run_id := await queue.get()) is not None:
            if (record := self._runs.get(run_id)) is None or record.finished:
                continue  # its watches left while it queued
            self._gets += 1
            try:
                run = await self.client.get_run(run_id)
            except Exception as exc:  # noqa: BLE001 - forwarded, not swallowed: the watches raise it
                if (record := self._runs.get(run_id)) is not None:
                    self._fail(record, exc, start, early)
                continue
            if (record := self._runs.get(run_id)) is not None and not record.finished:
                self._deliver(record, run, start, sweep, early)

    # ---- delivery ------------------------------------------------------------------------------

    def _deliver(self, record: _Watched, run: Run, start: float, sweep: int, early: float) -> None:
        record.seen = sweep
        record.due = start + record.interval * early
        if run.state.is_terminal:
            record.finished = True
        for watch in record.watches:
            watch._put(run)

    def _fail(self, record: _Watched, error: BaseException, start: float, early: float) -> None:
        record.due = start + record.interval * early
        if isinstance(error, RunNotFound):
            record.finished = True
        for watch in record.watches:
            watch._put(error)


def _ring(alarm: asyncio.Future[None]) -> None:
    if not alarm.done():
        alarm.set_result(None)


# One watcher per shared client (so per event loop and workspace identity). Weak keys: a client that
# is gone takes its idle watcher with it.
_shared: weakref.WeakKeyDictionary[DatabricksClient, RunWatcher] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def watch_run(
    client: DatabricksClient,
    run_id: int,
    *,
    interval_seconds: float,
    lease: Callable[[], AbstractAsyncContextManager[object]] | None = None,
) -> RunWatch:
    """``async with watch_run(client, run_id, interval_seconds=30) as updates``: watch ``run_id``
    through ``client``'s shared watcher, created on first use and dropped when its last watch ends.

    Pass the client from ``shared_client`` so every trigger of a workspace shares one watcher, and
    ``lease`` (a factory of ``shared_client`` leases on it) so the watcher keeps the session open
    while it polls: then a caller may release its own lease as soon as it has the watch. ``lease``
    is used only by the call that creates the watcher.
    """
    with _shared_lock:
        watcher = _shared.get(client)
        if watcher is None:
            watcher = _shared[client] = RunWatcher(client, lease=lease)
    return watcher.watch(run_id, interval_seconds=interval_seconds)

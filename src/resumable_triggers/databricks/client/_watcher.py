"""Many watched runs, few requests: one sweep of ``runs/list`` answers 25 watched runs at once.

A triggerer watching 10,000 runs every 30 s with one ``runs/get`` each sends 333 requests a second.
A ``RunWatcher`` (one per shared client, so one per event loop and workspace identity) instead sweeps
``runs/list?active_only=true`` once per interval and hands every watched run it lists a snapshot. A
watched run that the listing passes without showing has left the active set. Those are confirmed in
windows of about 25: ``runs/list?completed_only=true`` bounded by the window's start times (which the
active listing told us) pages through the runs that finished, and each one that SUCCEEDED gets its
listed snapshot as its terminal one (the listing carries no tasks, which a successful run's event does
not need). A run that ended otherwise gets one ``runs/get``, because its caller reads the failed tasks
from it; so does a run the completed listing did not show (deleted: RunNotFound), and every run of a
window whose listing stopped paying for itself (``_watch_plan``). When the active set is mostly runs
nobody here watches, paging it would cost more than asking for each run, so the sweep falls back to
one ``runs/get`` per due run, and tries listing again every few sweeps. Every request goes through
the client, so the workspace's shared ``RequestBudget`` paces the lot::

    async with shared_client(host, headers) as client:
        async with watch_run(client, run_id, interval_seconds=30) as updates:
            async for run in updates:  # at least once per interval; ends after a terminal snapshot
                ...

The parts: ``_watch`` holds what a caller iterates (``RunWatch``) and the per-run record; ``_watch_plan``
decides, as pure functions, whether a sweep lists and how far, and how runs are confirmed;
``_watch_confirm`` confirms them; this module schedules the sweeps and lists the active runs. Time
is read from the client's ``clock`` and waited out with its ``sleep`` (or the watcher's own), so a
test moves a thousand sweeps along without waiting for one.

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
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from resumable_triggers._clock import Clock, Sleep
from resumable_triggers.databricks.client._client import DatabricksClient
from resumable_triggers.databricks.client._models import RunsPage
from resumable_triggers.databricks.client._watch import RunWatch, Watched
from resumable_triggers.databricks.client._watch_confirm import Confirming, Queue, Windows
from resumable_triggers.databricks.client._watch_plan import (
    PAGE_SIZE,
    ListingState,
    RunKey,
    WatcherSettings,
    WatcherStats,
    after_listing,
    passed_by,
    plan_sweep,
)

__all__ = ["RunWatcher", "watch_run"]

logger = logging.getLogger(__name__)


class RunWatcher(Confirming):
    """Polls every watched run of one client at least once per its interval, in as few requests as
    it can. Use ``watch_run`` to share the loop's watcher; construct one only for tests or isolation.

    The sweeping task starts with the first watch and is cancelled when the last one leaves. A
    watcher belongs to the event loop of its first watch. ``clock`` and ``sleep`` default to the
    client's; ``rng`` draws the jitter. ``lease`` is entered while anything is watched (e.g. a
    ``shared_client`` lease on ``client``): the watcher is what uses the session, so its callers
    need not hold a lease each while they wait.
    """

    def __init__(
        self,
        client: DatabricksClient,
        *,
        settings: WatcherSettings | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        lease: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or WatcherSettings()
        self._clock = clock or client.clock
        self._sleep = sleep or client.sleep
        self._lease = lease
        self._rng = rng or random.Random()
        self._runs: dict[int, Watched] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._alarm: asyncio.Future[None] | None = None
        self._alarm_at = math.inf
        self._sweep_no = 0
        self._listing_sweeps = 0
        self._pages = 0
        self._gets = 0
        self._completed_pages = 0
        self._listing = ListingState()

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
            completed_pages=self._completed_pages,
            active_pages=self._listing.active_pages,
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
        due = self._clock() + min(self.settings.coalesce_seconds, interval / 4)
        record = self._runs.get(run_id)
        if record is None:
            record = self._runs[run_id] = Watched(run_id, interval, due, self._sweep_no)
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
        try:
            async with self._lease() if self._lease is not None else contextlib.nullcontext():
                reached = -math.inf  # the last deadline slept until
                while self._runs:
                    wake = min((r.due for r in self._runs.values() if not r.finished), default=math.inf)
                    # A clock that reads a rounding error short of a deadline slept until is not early.
                    now = max(self._clock(), reached)
                    if wake > now:
                        if await self._sleep_until(wake):
                            reached = wake
                        continue  # watches may have come or gone meanwhile: plan afresh
                    await self._sweep(now)
        except Exception as exc:
            logger.exception("Databricks run watcher for %s failed; its watches see the error", self.client)
            for record in self._runs.values():
                for watch in record.watches:
                    watch.put(exc)
        finally:
            # However it ended, the next watch added starts a fresh task.
            if self._task is asyncio.current_task():
                self._task = None

    async def _sleep_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` or until a new watch needs an earlier poll: True if the deadline came.

        The sleep is a task of its own so that an early alarm can end it: one task per sweep, not
        per watched run."""
        loop = asyncio.get_running_loop()
        alarm = self._alarm = loop.create_future()
        self._alarm_at = deadline
        timer: asyncio.Future[None] | None = None
        if deadline != math.inf:
            timer = asyncio.ensure_future(self._sleep(max(0.0, deadline - self._clock())))
            timer.add_done_callback(lambda _: _ring(alarm))
        try:
            await alarm
            return timer is not None and timer.done()
        finally:
            if timer is not None:
                timer.cancel()
            self._alarm, self._alarm_at = None, math.inf

    async def _sweep(self, start: float) -> None:
        self._sweep_no += 1
        sweep = self._sweep_no
        due = [r.run_id for r in self._runs.values() if not r.finished and self._is_due(r, start)]
        if not due:
            return
        # Drawn once per sweep: every run polled now is next due a little less than an interval on.
        early = 1.0 - self._rng.uniform(0.0, self.settings.jitter_fraction)
        budget, self._listing = plan_sweep(self._listing, due=len(due), sweep=sweep, settings=self.settings)
        queue: Queue = asyncio.Queue()
        workers = [self._confirm(queue, start, sweep, early) for _ in range(self.settings.get_concurrency)]
        if budget:
            self._listing_sweeps += 1
            windows: Windows = asyncio.Queue()
            await asyncio.gather(
                self._list_active(queue, windows, start, sweep, budget, early, len(due)),
                self._confirm_windows(windows, queue, start, sweep, early),
                *workers,
            )
        else:
            self._queue_confirms(queue, due, sweep)
            self._stop_workers(queue)
            await asyncio.gather(*workers)
        logger.debug(
            "Swept %d due of %d watched runs in %.2f s (%s)",
            len(due),
            len(self._runs),
            self._clock() - start,
            "listing" if budget else "runs/get each",
        )

    def _is_due(self, record: Watched, now: float) -> bool:
        # Runs due within the coalescing window join this sweep rather than cause another one.
        return record.due <= now + min(self.settings.coalesce_seconds, record.interval / 4)

    async def _list_active(
        self, queue: Queue, windows: Windows, start: float, sweep: int, budget: int, early: float, due: int
    ) -> None:
        """Page through the active runs (at most ``budget`` pages), delivering every watched run
        listed and handing every one that is not to be confirmed."""
        leaving: list[RunKey] = []
        try:
            complete, pages = await self._page_through(leaving, windows, start, sweep, budget, early)
            self._listing = after_listing(
                self._listing, complete=complete, pages=pages, due=due, sweep=sweep, settings=self.settings
            )
            if not complete:
                logger.info(
                    "Listing active runs for %s: %d pages did not reach the watched runs; asking for each "
                    "run for the next %d sweeps",
                    self.client.host,
                    pages,
                    self.settings.reprobe_every_sweeps,
                )
            # Complete: every unseen run has left the active set. Cut short: only the due ones must be
            # asked for now; the rest wait for their own turn.
            unseen = [
                r
                for r in self._runs.values()
                if r.since < sweep and r.unanswered(sweep) and (complete or self._is_due(r, start))
            ]
            # Known (from an earlier listing) and gone past: confirmed by listing. Never listed, or
            # the listing was cut short before reaching it: asked for.
            behind = sorted((r.key for r in unseen if r.key is not None and complete), reverse=True)
            self._leave(leaving, windows, behind, sweep, flush=True)
            self._queue_confirms(queue, (r.run_id for r in unseen if r.key is None or not complete), sweep)
        except Exception as exc:  # noqa: BLE001 - forwarded, not swallowed: the watches raise it
            self._leave(leaving, windows, [], sweep, flush=True)
            for record in self._runs.values():
                if record.since < sweep and record.unanswered(sweep) and self._is_due(record, start):
                    record.deliver(exc, now=start, early=early, sweep=None)
        finally:
            windows.put_nowait(None)

    async def _page_through(
        self, leaving: list[RunKey], windows: Windows, start: float, sweep: int, budget: int, early: float
    ) -> tuple[bool, int]:
        """Read pages until the listing ends (True) or ``budget`` pages were read; (complete, pages)."""
        # Known runs, newest first as runs/list orders them.
        ordered = sorted(
            (r.key for r in self._runs.values() if r.key is not None and r.since < sweep and not r.finished),
            reverse=True,
        )
        passed = 0
        token: str | None = None
        for pages in range(1, budget + 1):
            page = await self.client.list_runs(active_only=True, limit=PAGE_SIZE, page_token=token)
            self._pages += 1
            self._deliver_listed(page, start, sweep, early)
            token = page.next_page_token
            if not page.has_more or not token:
                return True, pages
            last = page.runs[-1] if page.runs else None
            if last is not None and last.start_time_ms is not None:
                end = passed_by(ordered, passed, (last.start_time_ms, last.run_id))
                self._leave(leaving, windows, ordered[passed:end], sweep, flush=False)
                passed = end
        return False, budget

    def _deliver_listed(self, page: RunsPage, start: float, sweep: int, early: float) -> None:
        for run in page.runs:
            record = self._runs.get(run.run_id)
            # A terminal run in an active listing (a race) is confirmed to get its tasks.
            if record is not None and not record.finished and not run.state.is_terminal:
                if run.start_time_ms is not None:
                    record.key = (run.start_time_ms, run.run_id)
                record.deliver(run, now=start, early=early, sweep=sweep)


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
    is used only by the call that creates the watcher, which keeps the client's clock.
    """
    with _shared_lock:
        watcher = _shared.get(client)
        if watcher is None:
            watcher = _shared[client] = RunWatcher(client, lease=lease)
    return watcher.watch(run_id, interval_seconds=interval_seconds)

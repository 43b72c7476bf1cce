"""One caller's watch of one run (``RunWatch``), and the watcher's record of one run (``Watched``).

A watch is what a caller holds: an async context manager and an iterator of snapshots, fed by the
watcher through ``put``. A record is what the watcher keeps per run id, shared by every watch of
that run, so two watches of one run cost one poll. Both are plain slotted classes rather than
dataclasses or generators: a triggerer holds ten thousand of each.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from resumable_triggers.databricks.client._errors import RunNotFound
from resumable_triggers.databricks.client._models import Run
from resumable_triggers.databricks.client._watch_plan import RunKey

if TYPE_CHECKING:
    from resumable_triggers.databricks.client._watcher import RunWatcher

__all__ = ["RunWatch", "Watched"]


class RunWatch:
    """One caller's watch of one run: an async context manager (the watch lasts as long as the
    block) and an async iterator of ``Run`` snapshots.

    Only the latest snapshot is kept: a slow reader skips intermediate states, never the last one.
    Iteration ends after a terminal snapshot (or after raising RunNotFound); any other error about
    this run is raised once, and the watch carries on at the next sweep unless the caller leaves.
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

    def put(self, item: Run | BaseException) -> None:
        """Hand the reader a snapshot, or an error to raise (the watcher's side of the watch)."""
        if self._done:
            return  # the final word was said; a later poll (for another watch) changes nothing
        self._latest = item
        self._done = isinstance(item, RunNotFound) or (isinstance(item, Run) and item.state.is_terminal)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Watched:
    """The watcher's record of one run id, shared by every watch of that run.

    Times are on the watcher's clock; sweep numbers count the watcher's sweeps.
    """

    __slots__ = ("confirming", "due", "finished", "interval", "key", "run_id", "seen", "since", "watches")

    def __init__(self, run_id: int, interval: float, due: float, sweep: int) -> None:
        self.run_id = run_id
        self.watches: list[RunWatch] = []
        self.interval = interval
        self.due = due  # by when the run must be observed again
        self.key: RunKey | None = None  # where runs/list shows it; None until first listed
        self.since = sweep  # the sweep number current when it was added
        self.seen = -1  # the last sweep that listed or confirmed it
        self.confirming = -1  # the last sweep that queued a runs/get for it
        self.finished = False  # a terminal snapshot or RunNotFound was delivered

    def unanswered(self, sweep: int) -> bool:
        """Not finished, and neither listed, confirmed nor queued for a runs/get by sweep ``sweep``."""
        return not self.finished and self.seen != sweep and self.confirming != sweep

    def deliver(self, item: Run | BaseException, *, now: float, early: float, sweep: int | None) -> None:
        """Give every watch ``item`` and schedule the next poll ``early`` (<= 1) of an interval on.

        ``sweep`` is the sweep that observed the run (None for an error, which observes nothing).
        """
        if sweep is not None:
            self.seen = sweep
        self.due = now + self.interval * early
        if isinstance(item, RunNotFound) or (isinstance(item, Run) and item.state.is_terminal):
            self.finished = True
        for watch in self.watches:
            watch.put(item)

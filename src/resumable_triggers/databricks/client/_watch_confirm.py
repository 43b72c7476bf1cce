"""How a ``RunWatcher`` confirms runs that left the active set: by pages of completed runs, or with
one ``runs/get`` each. ``Confirming`` is the half of the watcher that does it (its base class).

While the active listing pages, ``_leave`` gathers the runs it went past into windows of a page's
worth (newest first) and hands each to ``_confirm_windows``, which runs beside the listing: so no
run waits for the whole (possibly long) sweep. For each window ``plan_confirming`` says whether to
list; ``_list_completed`` pages ``runs/list?completed_only=true`` bounded by the window's start
times while ``keep_confirming`` says it pays, delivers the SUCCESS snapshots it shows, and queues a
``runs/get`` for every other run of the window (ended otherwise, not shown, or not reached).
``get_concurrency`` workers (``_confirm``) send those runs/gets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from resumable_triggers.databricks.client._client import DatabricksClient
from resumable_triggers.databricks.client._errors import DatabricksError
from resumable_triggers.databricks.client._models import Run, RunsPage
from resumable_triggers.databricks.client._watch import Watched
from resumable_triggers.databricks.client._watch_plan import (
    PAGE_SIZE,
    ListingState,
    RunKey,
    WatcherSettings,
    after_confirming,
    keep_confirming,
    passed_by,
    plan_confirming,
)

__all__ = ["Confirming", "Queue", "Windows"]

logger = logging.getLogger(__name__)

Queue = asyncio.Queue[int | None]  # run ids to confirm with runs/get; None tells a worker to stop
Windows = asyncio.Queue[list[RunKey] | None]  # runs to confirm by listing, newest first; None: no more


class Confirming:
    """The confirming half of a ``RunWatcher`` (its only subclass), which sets these attributes."""

    client: DatabricksClient
    settings: WatcherSettings
    _runs: dict[int, Watched]
    _listing: ListingState
    _gets: int
    _completed_pages: int

    def _leave(
        self, leaving: list[RunKey], windows: Windows, keys: list[RunKey], sweep: int, *, flush: bool
    ) -> None:
        """Add runs that left the active set (newest first) to the window being gathered; hand it on
        once it holds a page's worth, or at once with ``flush``: each runs/list window is a page or
        more, and none waits long for the rest of the sweep."""
        for key in keys:
            record = self._runs.get(key[1])
            if record is not None and record.unanswered(sweep):
                record.confirming = sweep
                leaving.append(key)
            if len(leaving) >= PAGE_SIZE:
                windows.put_nowait(leaving.copy())
                leaving.clear()
        if flush and leaving:
            windows.put_nowait(leaving.copy())
            leaving.clear()

    def _queue_confirms(self, queue: Queue, run_ids: Iterable[int], sweep: int) -> None:
        for run_id in run_ids:
            record = self._runs.get(run_id)
            if record is not None and record.unanswered(sweep):
                record.confirming = sweep
                queue.put_nowait(run_id)

    async def _confirm_windows(
        self, windows: Windows, queue: Queue, start: float, sweep: int, early: float
    ) -> None:
        """Confirm each window of runs that left the active set, by listing or with runs/get each,
        until the active listing is over; then stop the runs/get workers."""
        try:
            while (window := await windows.get()) is not None:
                if not plan_confirming(self._listing, runs=len(window), sweep=sweep):
                    self._ask_each(queue, window)
                    continue
                pages, saved = await self._list_completed(window, queue, start, sweep, early)
                self._listing = after_confirming(
                    self._listing, pages=pages, saved=saved, sweep=sweep, settings=self.settings
                )
        finally:
            self._stop_workers(queue)

    async def _list_completed(
        self, window: list[RunKey], queue: Queue, start: float, sweep: int, early: float
    ) -> tuple[int, int]:
        """Page through the completed runs that started within ``window`` (newest first), delivering
        the successful ones it shows and asking for the rest; (pages read, runs/gets saved)."""
        pending = {key[1] for key in window}
        # Min and max, not the ends: a window is newest first, except for runs listed out of order.
        earliest, latest = min(key[0] for key in window), max(key[0] for key in window)
        pages = saved = passed = 0
        token: str | None = None
        try:
            while True:
                page = await self.client.list_runs(
                    completed_only=True,
                    limit=PAGE_SIZE,
                    page_token=token,
                    start_time_from_ms=earliest,
                    start_time_to_ms=latest,
                )
                pages += 1
                self._completed_pages += 1
                saved += self._deliver_completed(page, pending, queue, start, sweep, early)
                token = page.next_page_token
                last = page.runs[-1] if page.runs else None
                if not page.has_more or not token or last is None or last.start_time_ms is None:
                    break
                end = passed_by(window, passed, (last.start_time_ms, last.run_id))
                self._ask_each(queue, [key for key in window[passed:end] if key[1] in pending], pending)
                passed = end
                if not keep_confirming(pages=pages, saved=saved, left=len(pending)):
                    break
        except DatabricksError as exc:
            # Not the watches' error: asking for each run may well succeed, and if not, they see that.
            logger.info(
                "Listing completed runs for %s failed (%s); asking for each run", self.client.host, exc
            )
        # Not shown (deleted, or the paging stopped): asked for, which also tells RunNotFound.
        self._ask_each(queue, [key for key in window if key[1] in pending], pending)
        return pages, saved

    def _deliver_completed(
        self, page: RunsPage, pending: set[int], queue: Queue, start: float, sweep: int, early: float
    ) -> int:
        """Deliver the successful watched runs of a page of completed runs; how many that was."""
        delivered = 0
        for run in page.runs:
            record = self._runs.get(run.run_id)
            if record is None or record.finished:
                continue
            if _final_from_listing(run):
                record.deliver(run, now=start, early=early, sweep=sweep)
                if run.run_id in pending:  # others (listed active earlier, ended since) are a bonus
                    delivered += 1
                    pending.discard(run.run_id)
            elif run.run_id in pending:
                # Ended otherwise: its caller reads the failed tasks, which only runs/get carries.
                self._ask_each(queue, [(0, run.run_id)], pending)
        return delivered

    def _ask_each(self, queue: Queue, window: list[RunKey], pending: set[int] | None = None) -> None:
        """Queue one runs/get for each run of ``window`` (already marked as being confirmed)."""
        for _, run_id in window:
            if pending is not None:
                pending.discard(run_id)
            queue.put_nowait(run_id)

    def _stop_workers(self, queue: Queue) -> None:
        for _ in range(self.settings.get_concurrency):
            queue.put_nowait(None)

    async def _confirm(self, queue: Queue, start: float, sweep: int, early: float) -> None:
        """One of ``get_concurrency`` workers: runs/get each queued run until told to stop."""
        while (run_id := await queue.get()) is not None:
            if (record := self._runs.get(run_id)) is None or record.finished:
                continue  # its watches left while it queued
            self._gets += 1
            try:
                run = await self.client.get_run(run_id)
            except Exception as exc:  # noqa: BLE001 - forwarded, not swallowed: the watches raise it
                if (record := self._runs.get(run_id)) is not None:
                    record.deliver(exc, now=start, early=early, sweep=None)
                continue
            if (record := self._runs.get(run_id)) is not None and not record.finished:
                record.deliver(run, now=start, early=early, sweep=sweep)


def _final_from_listing(run: Run) -> bool:
    """A listed snapshot good enough to end a watch with: terminal and SUCCESS (an event for any
    other result reads the failed tasks, which a listing without tasks does not carry)."""
    return run.state.is_terminal and run.state.is_successful

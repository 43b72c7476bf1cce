"""What a ``RunWatcher`` decides, as pure functions of small values: no I/O, no clock, no loop.

Each sweep first asks ``plan_sweep`` whether to list active runs, and how many pages it may read
before listing costs more than asking for each due run; after listing it records what it learnt with
``after_listing``. The state between sweeps is one frozen ``ListingState``::

    nothing known ............ probe: read at most due // 2 pages  (a listing full of foreign runs
                                                                    never costs more than 1.5x the
                                                                    per-run price)
    last full listing took
      <= due pages ............ list, up to one page per due run
      >  due pages ............ ask per run for reprobe_every_sweeps sweeps, then probe again
    a probe cut short ........ ask per run for reprobe_every_sweeps sweeps, then probe again
    ... but twice as many due  probe again at once (a restart's first sweep sees only the
        as when it stopped        triggers created so far: its cut-short probe says little)
    fewer than 2 due runs .... ask per run (a page costs as much as one runs/get)

While it pages, ``passed_by`` says which known runs the listing has gone past without showing:
they have left the active set and are confirmed at once, not after the whole (possibly long) sweep.

Runs that left the active set are confirmed in windows of about a page's worth, by listing the
completed runs that started within the window (``runs/list?completed_only=true`` bounded by
``start_time_from/to``). A window of foreign or long-finished runs can make that dearer than one
``runs/get`` each, so::

    fewer than 2 runs to confirm .......... runs/get each (a page costs as much as one runs/get)
    a window stopped paying (pages > saved) runs/get each for reprobe_every_sweeps sweeps
    while paging ......................... next page only while pages so far <= runs it saved and
                                           2+ runs are left: a window costs at most one request
                                           more than asking for each of its runs
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

__all__ = [
    "PAGE_SIZE",
    "ListingState",
    "RunKey",
    "WatcherSettings",
    "WatcherStats",
    "after_confirming",
    "after_listing",
    "keep_confirming",
    "passed_by",
    "plan_confirming",
    "plan_sweep",
]

PAGE_SIZE = 25  # the most runs/list returns per page

RunKey = tuple[int, int]
"""(start_time_ms, run_id): where ``runs/list`` (newest first) shows a run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WatcherSettings:
    """How a ``RunWatcher`` schedules its sweeps. The defaults suit a triggerer; tests shrink them.

    ``coalesce_seconds`` (default 1 s): a new watch waits up to this long (at most a quarter of its
    interval) for its first poll, so the thousands of watches a triggerer restart creates share one
    sweep instead of racing.

    ``jitter_fraction`` (default 0.05): each sweep comes up to this fraction of the interval early
    (never late), so triggerers that started together drift apart instead of hitting the workspace
    in lockstep.

    ``get_concurrency`` (default 8): ``runs/get`` requests in flight at once (so at most one more TCP
    connection than this). The request budget paces them anyway; 8 in flight sustain 25+ requests a
    second even at a real workspace's 300 ms per request, more than any sensible budget.

    ``reprobe_every_sweeps`` (default 10): after listing stopped paying off (foreign runs), how many
    sweeps use ``runs/get`` per run before the listing is tried again.
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
    """What a watcher has done since it was created (for logs, tests and the benchmark).

    ``pages`` counts pages of active runs, ``completed_pages`` pages of completed runs read to
    confirm runs that left the active set. ``active_pages`` is how many pages one full listing of the
    active set took last time; None before one completed, or after listing stopped paying off.
    """

    watched_runs: int
    sweeps: int
    listing_sweeps: int
    pages: int
    gets: int
    active_pages: int | None
    completed_pages: int = 0


@dataclass(frozen=True, slots=True)
class ListingState:
    """What the sweeps so far taught about listing: the size of the active set, and when to try again.

    ``active_pages``: pages the last full listing took (None: unknown). ``get_only_until``: the sweep
    number before which listing is not tried again, unless twice ``stopped_at_due`` runs are due (the
    due runs when listing stopped paying). ``confirm_each_until``: the sweep number before which runs
    that left the active set are confirmed with one runs/get each, not by listing.
    """

    active_pages: int | None = None
    get_only_until: int = 0
    confirm_each_until: int = 0
    stopped_at_due: int = 0


def plan_sweep(
    state: ListingState, *, due: int, sweep: int, settings: WatcherSettings
) -> tuple[int, ListingState]:
    """How many runs/list pages sweep number ``sweep`` may read for ``due`` due runs (0: don't list),
    and the state to keep. See the module's table."""
    if due < 2 or (sweep < state.get_only_until and due < 2 * state.stopped_at_due):
        return 0, state
    if state.active_pages is None:
        return due // 2, state
    if state.active_pages > due:
        return 0, _stop_listing(state, due=due, sweep=sweep, settings=settings)
    return due, state


def after_listing(
    state: ListingState, *, complete: bool, pages: int, due: int, sweep: int, settings: WatcherSettings
) -> ListingState:
    """The state after sweep ``sweep`` read ``pages`` pages for ``due`` due runs, to the end of the
    listing or not."""
    if complete:
        return replace(state, active_pages=pages, get_only_until=0, stopped_at_due=0)
    return _stop_listing(state, due=due, sweep=sweep, settings=settings)


def _stop_listing(state: ListingState, *, due: int, sweep: int, settings: WatcherSettings) -> ListingState:
    return replace(
        state, active_pages=None, get_only_until=sweep + settings.reprobe_every_sweeps, stopped_at_due=due
    )


def plan_confirming(state: ListingState, *, runs: int, sweep: int) -> bool:
    """Whether sweep ``sweep`` confirms a window of ``runs`` runs that left the active set by listing
    the completed runs (True) or with one runs/get each (False). See the module's table."""
    return runs >= 2 and sweep >= state.confirm_each_until


def keep_confirming(*, pages: int, saved: int, left: int) -> bool:
    """Whether to read another page of completed runs, after ``pages`` pages saved ``saved``
    runs/gets and ``left`` runs of the window are still unseen.

    Only while the listing has paid for itself so far: so the window costs at most one request
    more than a runs/get each, however many foreign or long-finished runs it holds.
    """
    return left >= 2 and pages <= saved


def after_confirming(
    state: ListingState, *, pages: int, saved: int, sweep: int, settings: WatcherSettings
) -> ListingState:
    """The state after a window's ``pages`` pages of completed runs saved ``saved`` runs/gets."""
    if pages > saved:
        return replace(state, confirm_each_until=sweep + settings.reprobe_every_sweeps)
    return state


def passed_by(ordered: list[RunKey], start: int, edge: RunKey) -> int:
    """Where the runs of ``ordered`` (newest first) that sort after ``edge`` end, from ``start`` on.

    ``ordered[start:result]`` are the known runs that a page ending at ``edge`` went past without
    showing. An order differing from the workspace's only costs an extra runs/get.
    """
    end = start
    while end < len(ordered) and ordered[end] > edge:
        end += 1
    return end

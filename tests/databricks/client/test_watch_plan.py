"""The watcher's decisions, as pure functions: whether a sweep lists, how far, and what it learnt."""

from __future__ import annotations

import pytest

from resumable_triggers.databricks.client import WatcherSettings
from resumable_triggers.databricks.client._watch_plan import (
    ListingState,
    after_listing,
    passed_by,
    plan_sweep,
)

SETTINGS = WatcherSettings(reprobe_every_sweeps=10)


@pytest.mark.parametrize(
    ("state", "due", "expected"),
    [
        (ListingState(), 1, (0, ListingState())),  # one run: a page costs as much as its runs/get
        (ListingState(), 9, (4, ListingState())),  # unknown: probe at most half the per-run price
        (ListingState(active_pages=3), 9, (9, ListingState(active_pages=3))),  # cheaper: list
        (ListingState(active_pages=12), 9, (0, ListingState(None, 17))),  # dearer: ask per run
        (ListingState(None, 8), 9, (0, ListingState(None, 8))),  # still asking per run
    ],
)
def test_a_sweep_lists_only_while_listing_is_cheaper_than_asking_per_run(
    state: ListingState, due: int, expected: tuple[int, ListingState]
) -> None:
    """Pages a sweep may read (0: none) and the state it keeps, for sweep 7 and ``due`` due runs."""
    assert expected == plan_sweep(state, due=due, sweep=7, settings=SETTINGS)


def test_a_full_listing_records_its_length_and_a_cut_short_one_stops_listing_for_a_while() -> None:
    """Reaching the end of the listing teaches its length; a probe cut short means per-run requests
    for ``reprobe_every_sweeps`` sweeps, the length forgotten."""
    state = ListingState(active_pages=2, get_only_until=3)

    assert ListingState(5, 3) == after_listing(state, complete=True, pages=5, sweep=7, settings=SETTINGS)
    assert ListingState(None, 17) == after_listing(state, complete=False, pages=4, sweep=7, settings=SETTINGS)


def test_runs_newer_than_a_pages_last_run_were_passed_without_being_shown() -> None:
    """Known runs sorting after a page's last (start time, run id) are the ones it went past."""
    ordered = [(900, 9), (800, 8), (700, 7), (600, 6)]

    assert 2 == passed_by(ordered, 0, (750, 1))
    assert 2 == passed_by(ordered, 2, (750, 1))  # already passed: nothing new
    assert 4 == passed_by(ordered, 2, (100, 1))

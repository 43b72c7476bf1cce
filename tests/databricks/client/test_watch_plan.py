"""The watcher's decisions, as pure functions: whether a sweep lists, how far, and what it learnt."""

from __future__ import annotations

import pytest

from resumable_triggers.databricks.client import WatcherSettings
from resumable_triggers.databricks.client._watch_plan import (
    ListingState,
    after_confirming,
    after_listing,
    keep_confirming,
    passed_by,
    plan_confirming,
    plan_sweep,
)

SETTINGS = WatcherSettings(reprobe_every_sweeps=10)


@pytest.mark.parametrize(
    ("state", "due", "expected"),
    [
        (ListingState(), 1, (0, ListingState())),  # one run: a page costs as much as its runs/get
        (ListingState(), 9, (4, ListingState())),  # unknown: probe at most half the per-run price
        (ListingState(active_pages=3), 9, (9, ListingState(active_pages=3))),  # cheaper: list
        (ListingState(active_pages=12), 9, (0, ListingState(None, 17, stopped_at_due=9))),  # dearer
        (ListingState(None, 8, stopped_at_due=9), 9, (0, ListingState(None, 8, stopped_at_due=9))),  # still
        # Twice as many due as when listing stopped (a restart's triggers still being created): probe.
        (ListingState(None, 8, stopped_at_due=4), 9, (4, ListingState(None, 8, stopped_at_due=4))),
    ],
)
def test_a_sweep_lists_only_while_listing_is_cheaper_than_asking_per_run(
    state: ListingState, due: int, expected: tuple[int, ListingState]
) -> None:
    """Pages a sweep may read (0: none) and the state it keeps, for sweep 7 and ``due`` due runs."""
    assert expected == plan_sweep(state, due=due, sweep=7, settings=SETTINGS)


def test_a_full_listing_records_its_length_and_a_cut_short_one_stops_listing_for_a_while() -> None:
    """Reaching the end of the listing teaches its length (and ends any per-run spell); a probe cut
    short means per-run requests for ``reprobe_every_sweeps`` sweeps, the length forgotten and the
    due count kept (twice as many due probe again)."""
    state = ListingState(active_pages=2, get_only_until=3, stopped_at_due=6)

    assert ListingState(5) == after_listing(state, complete=True, pages=5, due=9, sweep=7, settings=SETTINGS)
    assert ListingState(None, 17, stopped_at_due=9) == after_listing(
        state, complete=False, pages=4, due=9, sweep=7, settings=SETTINGS
    )


def test_runs_newer_than_a_pages_last_run_were_passed_without_being_shown() -> None:
    """Known runs sorting after a page's last (start time, run id) are the ones it went past."""
    ordered = [(900, 9), (800, 8), (700, 7), (600, 6)]

    assert 2 == passed_by(ordered, 0, (750, 1))
    assert 2 == passed_by(ordered, 2, (750, 1))  # already passed: nothing new
    assert 4 == passed_by(ordered, 2, (100, 1))


@pytest.mark.parametrize(
    ("state", "runs", "expected"),
    [
        (ListingState(), 1, False),  # one run: a page costs as much as its runs/get, and brings no tasks
        (ListingState(), 2, True),  # a page may confirm both
        (ListingState(), 25, True),
        (ListingState(confirm_each_until=8), 25, False),  # a window stopped paying lately: ask each
        (ListingState(confirm_each_until=7), 25, True),  # ... until then
    ],
)
def test_runs_that_left_the_active_set_are_confirmed_by_listing_unless_that_cannot_be_cheaper(
    state: ListingState, runs: int, expected: bool
) -> None:
    """Whether sweep 7 lists completed runs to confirm a window of ``runs`` runs."""
    assert expected == plan_confirming(state, runs=runs, sweep=7)


@pytest.mark.parametrize(
    ("pages", "saved", "left", "expected"),
    [
        (1, 25, 10, True),  # a full page of ours: go on
        (3, 3, 5, True),  # paid for itself exactly: one more page may still pay
        (3, 2, 5, False),  # dearer than runs/get so far: ask for the rest
        (1, 1, 1, False),  # one left: its runs/get costs what a page does
        (1, 24, 0, False),  # nothing left to find
    ],
)
def test_paging_completed_runs_goes_on_only_while_it_has_paid_for_itself(
    pages: int, saved: int, left: int, expected: bool
) -> None:
    """Another page only while pages so far <= runs/gets saved, with two or more runs left to find."""
    assert expected == keep_confirming(pages=pages, saved=saved, left=left)


def test_a_window_that_cost_more_pages_than_it_saved_switches_to_runs_get_for_a_while() -> None:
    """A window whose pages outnumber the runs/gets they saved makes the next ``reprobe_every_sweeps``
    sweeps ask for each run; one that paid off changes nothing."""
    state = ListingState(active_pages=4)

    assert state == after_confirming(state, pages=2, saved=2, sweep=7, settings=SETTINGS)
    assert ListingState(4, 0, 17) == after_confirming(state, pages=3, saved=2, sweep=7, settings=SETTINGS)


def test_the_worst_window_costs_one_request_more_than_asking_for_each_run() -> None:
    """However the window's pages go (here: none of ours after the first page's one), listing plus the
    runs/gets it did not save never exceed a runs/get each plus one."""
    runs, pages, saved = 10, 0, 0
    per_page = [1, 0, 0, 0]
    for found in per_page:
        pages, saved = pages + 1, saved + found
        if not keep_confirming(pages=pages, saved=saved, left=runs - saved):
            break

    assert (2, 1) == (pages, saved)
    assert runs + 1 == pages + (runs - saved)

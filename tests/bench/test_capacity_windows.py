"""``bench-capacity``'s pure decisions on synthetic request logs: joining log snapshots, windows,
per-run poll gaps, the computed capacity and the measured one."""

from __future__ import annotations

import pytest

from resumable_triggers._bench._capacity_windows import (
    LogMerge,
    SizeVerdict,
    counts_per_window,
    decide_capacity,
    expected_capacity,
    max_in_any_window,
    merge_log,
    poll_gaps,
)
from resumable_triggers.testing import RequestRecord


def get(t: float, run_id: int | None = 1, status: int = 200, endpoint: str = "runs/get") -> RequestRecord:
    return RequestRecord("GET", endpoint, status, t, run_id if status == 200 else None)


def test_overlapping_snapshots_join_without_repeating_a_record() -> None:
    """The second copy of the bounded log repeats the first's tail: only what is new is appended."""
    first = [get(1.0), get(2.0), get(3.0)]
    second = [get(2.0), get(3.0), get(4.0), get(5.0)]
    merged = merge_log(merge_log(LogMerge(()), first), second)
    assert ([1.0, 2.0, 3.0, 4.0, 5.0], False) == ([r.time for r in merged.records], merged.truncated)


def test_records_logged_at_the_same_instant_are_told_apart_by_count() -> None:
    """Two identical records at t=3 were held, a third came after the copy: exactly one is added."""
    held = merge_log(LogMerge(()), [get(2.0), get(3.0), get(3.0)])
    merged = merge_log(held, [get(3.0), get(3.0), get(3.0), get(4.0)])
    assert [2.0, 3.0, 3.0, 3.0, 4.0] == [r.time for r in merged.records]


def test_a_snapshot_that_begins_after_the_last_record_held_marks_the_log_truncated() -> None:
    """The emulator dropped requests between two copies: the newer ones are kept, the gap is flagged."""
    held = merge_log(LogMerge(()), [get(1.0), get(2.0)])
    merged = merge_log(held, [get(5.0), get(6.0)])
    assert ([1.0, 2.0, 5.0, 6.0], True) == ([r.time for r in merged.records], merged.truncated)


def test_an_empty_snapshot_changes_nothing() -> None:
    """No requests since the last copy: the records stay, nothing is flagged."""
    held = merge_log(LogMerge(()), [get(1.0)])
    assert held == merge_log(held, [])


def test_counts_per_window_counts_each_time_in_its_window_and_drops_the_rest() -> None:
    """Windows are half-open from ``start``; times before it or past the last window are not counted."""
    times = [9.0, 10.0, 10.5, 11.0, 12.9, 13.0, 20.0]
    assert (2, 1, 1) == counts_per_window(times, start=10.0, width=1.0, windows=3)


def test_counts_per_window_rejects_a_window_of_no_width() -> None:
    """A zero width would divide by zero: it is refused with the values named."""
    with pytest.raises(ValueError, match="width > 0"):
        counts_per_window([1.0], start=0.0, width=0.0, windows=1)


def test_the_busiest_sliding_second_finds_a_burst_that_straddles_two_aligned_seconds() -> None:
    """Five requests from t=0.6 to t=1.4: aligned seconds see 2 and 3, a sliding window sees all 5."""
    times = [0.6, 0.8, 1.0, 1.2, 1.4, 3.0]
    assert ((2, 3, 0, 1), 5) == (
        counts_per_window(times, start=0.0, width=1.0, windows=4),
        max_in_any_window(times, width=1.0),
    )


def test_the_busiest_window_excludes_a_request_exactly_one_width_later() -> None:
    """[t, t + 1) is half-open: requests at 0.0 and 1.0 are never in the same second."""
    assert 1 == max_in_any_window([0.0, 1.0, 2.0], width=1.0)
    assert 0 == max_in_any_window([], width=1.0)


def test_poll_gaps_include_the_edges_and_give_an_unpolled_run_the_whole_stretch() -> None:
    """Run 1 polled at 12 and 15 in [10, 20]: its longest stretch is 15 -> 20. Run 2 got only 429s
    and a runs/list page: never polled, so 10 s. Run 3 polled outside the stretch only: 10 s too."""
    records = [
        get(12.0, 1),
        get(15.0, 1),
        get(13.0, status=429),
        get(14.0, 2, endpoint="runs/list"),
        get(25.0, 3),
    ]
    assert {1: 5.0, 2: 10.0, 3: 10.0} == poll_gaps(records, run_ids=[1, 2, 3], start=10.0, end=20.0)


@pytest.mark.parametrize(
    ("requests_per_run_interval", "expected"),
    [(1 / 25, 10_000), (1.0, 400), (2.0, 200), (3.0, 133)],
)
def test_computed_capacity_is_limit_times_interval_over_requests_per_run(
    requests_per_run_interval: float, expected: int
) -> None:
    """At 40 req/s and 10 s: 400 one-request-per-interval runs, 25 times that when a page lists 25."""
    assert expected == expected_capacity(
        limit_requests_per_second=40, poll_seconds=10, requests_per_run_interval=requests_per_run_interval
    )


def verdict(runs: int, responses_429: int = 0, within: bool | None = True) -> SizeVerdict:
    return SizeVerdict(runs=runs, responses_429=responses_429, polled_within_interval=within)


def test_capacity_is_the_largest_size_below_the_first_failure() -> None:
    """429s at 400 end the climb: 200 is the capacity, whatever order the sizes came in."""
    decision = decide_capacity([verdict(400, responses_429=3), verdict(100), verdict(800, 90), verdict(200)])
    assert (200, 400, False) == (decision.capacity, decision.first_failing, decision.passes_above_failure)


def test_a_stale_run_fails_a_size_even_without_a_429() -> None:
    """Zero 429s but a run not polled within the interval (ours stretching it): the size fails."""
    decision = decide_capacity([verdict(100), verdict(200, within=False)])
    assert (100, 200) == (decision.capacity, decision.first_failing)


def test_a_pass_above_a_failure_never_raises_the_capacity_and_is_flagged() -> None:
    """800 passing after 400 failed is noise: the capacity stays 200, and the report says so."""
    decision = decide_capacity([verdict(200), verdict(400, 1), verdict(800)])
    assert (200, 400, True) == (decision.capacity, decision.first_failing, decision.passes_above_failure)


def test_no_failure_means_the_capacity_is_at_least_the_largest_size() -> None:
    """Every size passed: the capacity is the largest measured, with no failing size."""
    decision = decide_capacity([verdict(100), verdict(200)])
    assert (200, None) == (decision.capacity, decision.first_failing)


def test_when_the_smallest_size_fails_there_is_no_capacity() -> None:
    """A size that could not be judged (no probe, no per-run polls) fails too: nothing is assumed."""
    decision = decide_capacity([verdict(100, within=None), verdict(200)])
    assert (None, 100, True) == (decision.capacity, decision.first_failing, decision.passes_above_failure)

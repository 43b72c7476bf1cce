"""``bench-capacity``'s decisions, as pure functions of request logs and numbers: no I/O, no clock.

The phase (``_capacity_phase``) hands these the emulator's request records (``RequestRecord``:
method, endpoint, status, time, run id), already cut to the triggers' own requests::

    records ──► merge_log ............ successive snapshots of the emulator's bounded log, joined
            ──► counts_per_window .... requests (or 429s) per window of w seconds from the start
            ──► max_in_any_window .... the most requests any w-second window saw (sliding)
            ──► poll_gaps ............ per run, the longest stretch without a successful runs/get

    CapacityPoint per size ──► decide_capacity ── the largest size below the first that failed
    limit, interval, requests per run per interval ──► expected_capacity  (the computed one)
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from resumable_triggers.testing import RequestRecord

__all__ = [
    "CapacityDecision",
    "LogMerge",
    "SizeVerdict",
    "counts_per_window",
    "decide_capacity",
    "expected_capacity",
    "max_in_any_window",
    "merge_log",
    "poll_gaps",
]


@dataclass(frozen=True, slots=True)
class LogMerge:
    """The records so far, and whether a snapshot began after the last record seen: the emulator
    keeps only its last 10,000 requests, so a gap means requests went unlogged (``truncated``)."""

    records: tuple[RequestRecord, ...]
    truncated: bool = False


def merge_log(merged: LogMerge, snapshot: Sequence[RequestRecord]) -> LogMerge:
    """Append what ``snapshot`` (the emulator's whole log, oldest first) holds beyond ``merged``.

    The newest record already held is found in the snapshot by value, from the end: records are
    appended in time order, and two requests logged in the same microsecond with the same fields
    are told apart by how many of them each side holds.
    """
    if not merged.records:
        return LogMerge(tuple(snapshot), merged.truncated)
    last = merged.records[-1]
    held = 0
    for r in reversed(merged.records):
        if r.time != last.time:
            break
        held += 1
    # Index just after the snapshot's copy of ``last`` (the held-th equal-time record from its start).
    same = [i for i, r in enumerate(snapshot) if r.time == last.time]
    if same and len(same) >= held:
        start = same[held - 1] + 1
        return LogMerge(merged.records + tuple(snapshot[start:]), merged.truncated)
    newer = [r for r in snapshot if r.time > last.time]
    # ``last`` has left the bounded log: whatever came between it and the snapshot's start is lost.
    lost = bool(snapshot) and snapshot[0].time > last.time
    return LogMerge(merged.records + tuple(newer), merged.truncated or lost)


def counts_per_window(times: Iterable[float], *, start: float, width: float, windows: int) -> tuple[int, ...]:
    """How many of ``times`` fall in each of ``windows`` windows of ``width`` seconds from ``start``
    (``[start + k * width, start + (k + 1) * width)``); times outside them are not counted."""
    if width <= 0 or windows < 0:
        raise ValueError(f"counts_per_window needs width > 0 and windows >= 0, got {width!r}, {windows!r}")
    counts = [0] * windows
    for t in times:
        k = math.floor((t - start) / width)
        if 0 <= k < windows:
            counts[k] += 1
    return tuple(counts)


def max_in_any_window(times: Iterable[float], *, width: float) -> int:
    """The most of ``times`` in any half-open window ``[t, t + width)``: what a workspace counting
    requests over a sliding ``width`` seconds would have seen at worst."""
    ordered = sorted(times)
    most, j = 0, 0
    for i, t in enumerate(ordered):
        while ordered[j] <= t - width:
            j += 1
        most = max(most, i - j + 1)
    return most


def poll_gaps(
    records: Iterable[RequestRecord],
    *,
    run_ids: Iterable[int],
    start: float,
    end: float,
    endpoint: str = "runs/get",
) -> dict[int, float]:
    """Per run of ``run_ids``, the longest stretch of ``[start, end]`` without a successful
    ``endpoint`` request for it, the edges included: a run never polled in it gets the whole stretch.

    For a trigger that polls each run on its own (the provider's) this is the effective interval a
    run saw, retries and back-off included. A trigger that lists many runs per request (ours) has no
    per-run requests to read, so this is not asked of it.
    """
    seen: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r.endpoint == endpoint and r.status == 200 and r.run_id is not None and start <= r.time <= end:
            seen[r.run_id].append(r.time)
    gaps = {}
    for run_id in run_ids:
        times = [start, *sorted(seen.get(run_id, ())), end]
        gaps[run_id] = max(b - a for a, b in itertools.pairwise(times))
    return gaps


def expected_capacity(
    *, limit_requests_per_second: float, poll_seconds: float, requests_per_run_interval: float
) -> int:
    """The computed capacity: the runs whose polls fill the limit, ``R * S / requests per run per
    interval`` (rounded down)."""
    if requests_per_run_interval <= 0:
        raise ValueError(f"requests_per_run_interval must be > 0, got {requests_per_run_interval!r}")
    # The small epsilon keeps 40 * 10 / 0.04 from flooring to 9,999 on a rounding error.
    return math.floor(limit_requests_per_second * poll_seconds / requests_per_run_interval + 1e-9)


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeVerdict:
    """One measured size, reduced to what the capacity decision reads."""

    runs: int
    responses_429: int
    # Every probe run's end was noticed within the interval + slack, and no run polled on its own
    # went longer than that between polls. None: nothing could tell (no probe, no per-run polls).
    polled_within_interval: bool | None

    @property
    def ok(self) -> bool:
        return self.responses_429 == 0 and self.polled_within_interval is True


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityDecision:
    """``capacity``: the largest measured size below the first failing one (None: the smallest
    failed). ``first_failing``: that size (None: none failed, the capacity is at least the largest).
    ``passes_above_failure``: a larger size passed again after a failure, a sign of noise."""

    capacity: int | None
    first_failing: int | None
    passes_above_failure: bool


def decide_capacity(verdicts: Iterable[SizeVerdict]) -> CapacityDecision:
    """Capacity is a threshold: sizes are read in ascending order and the first failure ends it, so
    one lucky pass above a failure never raises the capacity."""
    ordered = sorted(verdicts, key=lambda v: v.runs)
    capacity: int | None = None
    first_failing: int | None = None
    above = False
    for v in ordered:
        if first_failing is None:
            if v.ok:
                capacity = v.runs
            else:
                first_failing = v.runs
        elif v.ok:
            above = True
    return CapacityDecision(capacity=capacity, first_failing=first_failing, passes_above_failure=above)

"""A phase's raw measurements turned into its typed result (``MainResult`` / ``StormResult``).

Inputs are what ``_phase`` collected: the worker's own result (``WorkerResult`` as JSON), the
sampler's samples, the emulator's counters before and after, and the storm's request log. Pure
functions of them, apart from reading the triggers' log for the first polls.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resumable_triggers._bench._results import MainResult, Series, StormResult
from resumable_triggers._bench._sampler import Samples
from resumable_triggers._bench._workload import SETUP_ENDPOINT, RunPlan
from resumable_triggers.databricks.client import ClientSettings
from resumable_triggers.testing import Counters, RequestRecord

if TYPE_CHECKING:
    # _phase runs the processes and calls these: a runtime import would be circular.
    from resumable_triggers._bench._phase import PhaseSettings

# Log lines that mark a trigger's first successful poll (base class / provider wording).
_FIRST_POLL = {
    "ours": re.compile(r"^job (\d+) is "),
    "provider": re.compile(r"^run-id (\d+) in run state "),
}


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _requests(before: Counters, after: Counters) -> dict[str, int]:
    return {
        endpoint: count - before.requests_by_endpoint.get(endpoint, 0)
        for endpoint, count in after.requests_by_endpoint.items()
        if endpoint != SETUP_ENDPOINT and count - before.requests_by_endpoint.get(endpoint, 0)
    }


def _series(samples: Samples) -> Series:
    """Per-sample rates from cumulative counters, aligned on the sample times."""
    cpu = [0.0] + [
        (b - a) / max(1e-9, tb - ta)
        for a, b, ta, tb in zip(
            samples.cpu_seconds, samples.cpu_seconds[1:], samples.t, samples.t[1:], strict=False
        )
    ]
    rate = [0.0] + [
        (b - a) / max(1e-9, tb - ta)
        for a, b, ta, tb in zip(
            samples.requests, samples.requests[1:], samples.t, samples.t[1:], strict=False
        )
    ]
    return Series(
        t=tuple(samples.t),
        cpu_core_fraction=tuple(round(c, 4) for c in cpu),
        rss_bytes=tuple(float(r) for r in samples.rss_bytes),
        connections=tuple(float(c) for c in samples.connections),
        requests_per_second=tuple(round(r, 2) for r in rate),
    )


def _common(settings: PhaseSettings, result: dict[str, Any], samples: Samples) -> dict[str, Any]:
    """The ``PhaseResult`` fields, as keywords for either subclass (its constructor checks the names)."""
    wall = result["ended_at"] - result["started_at"]
    peak = max(result["max_rss_bytes"], *samples.rss_bytes) if samples.rss_bytes else result["max_rss_bytes"]
    steady_cpu, steady_wall = result["steady_cpu_seconds"], result["steady_wall_seconds"]
    return {
        "implementation": settings.implementation,
        "runs": settings.runs,
        "poll_seconds": settings.poll_seconds,
        "lead_seconds": settings.lead_seconds,
        "spread_seconds": settings.spread_seconds,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(result["cpu_seconds"], 3),
        "cpu_core_fraction": round(result["cpu_seconds"] / wall, 4) if wall > 0 else None,
        "steady_cpu_core_fraction": None if not steady_wall else round(steady_cpu / steady_wall, 5),
        "steady_cpu_ms_per_run_interval": None
        if not steady_wall
        else round(1000 * steady_cpu / (settings.runs * steady_wall / settings.poll_seconds), 4),
        "rss_baseline_bytes": result["baseline_rss_bytes"],
        "rss_peak_bytes": peak,
        "rss_bytes_per_run": round((peak - result["baseline_rss_bytes"]) / settings.runs),
        "connections_peak": max(samples.connections, default=0),
        "loop_lag_max_seconds": round(result["loop_lag_max_seconds"], 4),
        "loop_lag_by_second": tuple((int(s), lag) for s, lag in result["loop_lag_by_second"]),
        "gc_pause_max_seconds": tuple(round(p, 4) for p in result["gc_pause_max_seconds"]),
        "greenback_portal": settings.greenback,
        "gc_freeze": settings.gc_freeze,
    }


def main_metrics(
    settings: PhaseSettings,
    result: dict[str, Any],
    samples: Samples,
    before: Counters,
    after: Counters,
    plan: RunPlan,
    run_ids: list[int],
    ends: dict[int, float],
) -> MainResult:
    """``ends``: epoch seconds at which each run ended at the workspace."""
    events = {int(k): (v[0], v[1]) for k, v in result["events"].items()}
    started, ended = result["started_at"], result["ended_at"]
    requests = _requests(before, after)
    watched_seconds = sum(min(events.get(r, (ended,))[0], ended) - started for r in run_ids)
    run_intervals = watched_seconds / settings.poll_seconds
    latencies = [events[r][0] - ends[r] for r in run_ids if r in events and r in ends]
    wrong = [
        f"run {r}: expected {expected}, the event said {events[r][1]}"
        for r, expected in zip(run_ids, plan.outcomes, strict=True)
        if r in events and events[r][1] != expected
    ]
    missing = [r for r in run_ids if r not in events]
    details = list(result["errors"]) + wrong[:10] + [f"run {r}: no event" for r in missing[:10]]
    return MainResult(
        **_common(settings, result, samples),
        requests_total=sum(requests.values()),
        requests_by_endpoint=requests,
        requests_per_run_interval=round(sum(requests.values()) / run_intervals, 4) if run_intervals else None,
        responses_429=_responses_429(before, after),
        detection_latency_p50_seconds=_round(percentile(latencies, 50)),
        detection_latency_p99_seconds=_round(percentile(latencies, 99)),
        detection_latency_max_seconds=_round(max(latencies, default=None)),
        events=len(events),
        errors=len(wrong) + len(missing) + len(result["errors"]),
        error_details=tuple(details[:20]),
        outcomes=dict(Counter(outcome for _, outcome in events.values())),
        latencies_seconds=tuple(sorted(round(latency, 3) for latency in latencies)),
        series=_series(samples),
    )


def _first_polls(implementation: str, log_file: Path) -> dict[int, float]:
    """Epoch seconds of each trigger's first successful poll, from its first state log line."""
    pattern = _FIRST_POLL[implementation]
    first: dict[int, float] = {}
    with log_file.open() as lines:
        for line in lines:
            record = json.loads(line)
            match = pattern.match(str(record.get("event", "")))
            if match and int(match.group(1)) not in first:
                first[int(match.group(1))] = datetime.fromisoformat(record["timestamp"]).timestamp()
    return first


def storm_metrics(
    settings: PhaseSettings,
    result: dict[str, Any],
    samples: Samples,
    before: Counters,
    after: Counters,
    records: list[RequestRecord],
    workdir: Path,
    run_ids: list[int],
    *,
    request_log_truncated: bool,
) -> StormResult:
    """``records``: the emulator's requests since the triggers started, on its (epoch) clock."""
    started = result["started_at"]
    times = sorted(r.time - started for r in records if r.endpoint != SETUP_ENDPOINT)
    seconds = math.ceil(settings.storm_seconds)
    per_second = [0] * seconds
    for t in times:
        if 0 <= t < seconds:
            per_second[int(t)] += 1
    burst = ClientSettings().burst
    # The budget allows burst + rate * w requests in any window of w seconds; check several widths.
    # Arrival times at the emulator, not grant times at the client: loopback jitter can move one
    # request across a window's edge, so an excess of one request is jitter, two would be a breach.
    worst_ratio, worst_excess = 0.0, -math.inf
    for width in (1.0, 2.0, 5.0, 10.0, settings.poll_seconds):
        allowed = burst + settings.requests_per_second * width
        j = 0
        for i, t in enumerate(times):
            while times[j] < t - width:
                j += 1
            worst_ratio = max(worst_ratio, (i - j + 1) / allowed)
            worst_excess = max(worst_excess, i - j + 1 - allowed)
    polls = _first_polls(settings.implementation, workdir / "triggers.log.jsonl")
    first = {run_id: polls[run_id] for run_id in run_ids if run_id in polls}  # not the warm-up's
    delays = [t - started for t in first.values()]
    requests = _requests(before, after)
    return StormResult(
        **_common(settings, result, samples),
        # The provider's trigger has no budget.
        budget_requests_per_second=settings.requests_per_second
        if settings.implementation == "ours"
        else None,
        budget_burst=burst,
        emulator_limit_requests_per_second=settings.emulator_requests_per_second,
        emulator_limit_burst=settings.emulator_burst,
        requests_by_endpoint=requests,
        requests_per_second=tuple(per_second),
        max_requests_in_1s=max(per_second, default=0),
        max_window_to_budget_ratio=round(worst_ratio, 3),
        max_excess_requests=None if not times else round(worst_excess, 1),
        within_budget=not times or worst_excess <= 1,
        responses_429=_responses_429(before, after),
        runs_polled=len(first),
        first_poll_p50_seconds=_round(percentile(delays, 50)),
        first_poll_p99_seconds=_round(percentile(delays, 99)),
        first_poll_max_seconds=_round(max(delays, default=None)),
        errors=len(result["errors"]),
        error_details=tuple(result["errors"][:20]),
        series=_series(samples),
        request_log_truncated=request_log_truncated,
    )


def _responses_429(before: Counters, after: Counters) -> int:
    return after.responses_by_status.get(429, 0) - before.responses_by_status.get(429, 0)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

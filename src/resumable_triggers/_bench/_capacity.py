"""``resumable-triggers bench-capacity``: the workspace's rate limit as a capacity (issue 15, part 2).

At a workspace limit of R requests a second and a poll interval of S seconds, how many runs can one
triggerer watch with zero HTTP 429s, every run still polled within S + slack? Measured per size:
for each N in ``--sizes``, ours (and with ``--compare provider`` the provider's trigger) watches N
runs in a fresh trigger process against a fresh emulator limited to R (``_capacity_phase``). The
capacity is decided from the measured points (``_capacity_windows.decide_capacity``) and printed
beside the computed one, R * S / requests per run per interval::

    sizes ─► for each N: ours, then provider ─► CapacityPoint ─► CapacityCurve ─► table, JSON, PNG

Our triggers get a request budget equal to the limit (``--requests-per-second``, default R): at
zero 429s they keep every run watched by stretching their interval instead, which shows as
detection latency beyond S + slack. The provider's trigger polls each run on its own and retries a
429 a few times before its trigger fails.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from resumable_triggers._bench._capacity_phase import CapacitySettings, run_capacity_point
from resumable_triggers._bench._capacity_results import CapacityCurve, CapacityPoint, CapacityReport
from resumable_triggers._bench._capacity_windows import (
    SizeVerdict,
    decide_capacity,
    expected_capacity,
)
from resumable_triggers._bench._provenance import command_line, counts, machine, versions
from resumable_triggers._bench._results import Provenance
from resumable_triggers.databricks.client._watch_plan import PAGE_SIZE

# Requests per run per interval the computed capacity assumes: ours lists active runs a page of
# PAGE_SIZE at a time; the provider's trigger sends one runs/get per run per interval.
MODEL_REQUESTS_PER_RUN_INTERVAL = {"ours": 1 / PAGE_SIZE, "provider": 1.0}
# Trigger process start-up, submitting the runs and tearing down, beside each window (an estimate).
OVERHEAD_SECONDS = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "At a workspace rate limit of --limit requests a second and a --poll-seconds interval, measure "
        "how many runs each trigger watches with zero HTTP 429s and every run polled within the "
        "interval + slack: one fresh emulator (limited) and one fresh trigger process per size."
    )
    parser.add_argument(
        "--limit", type=float, default=40.0, help="the workspace's requests a second (default: 40)"
    )
    parser.add_argument(
        "--burst", type=int, help="the workspace limit's burst (default: --limit, rounded up)"
    )
    parser.add_argument("--poll-seconds", type=float, default=10.0, help="poll interval (default: 10)")
    parser.add_argument(
        "--sizes",
        type=counts,
        default=(100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600),
        help="runs watched at each step, any order (default: 100,200,400,...,25600, doubling)",
    )
    parser.add_argument("--compare", choices=["provider"], help="also measure the provider's trigger")
    parser.add_argument(
        "--compare-up-to",
        type=int,
        help="measure the provider's trigger only at sizes up to this (default: all)",
    )
    parser.add_argument(
        "--requests-per-second", type=float, help="our triggers' request budget (default: --limit)"
    )
    parser.add_argument(
        "--minutes-per-size",
        type=float,
        default=3.0,
        help="the measured stretch per size and implementation, after a 2-interval warm-up (default: 3)",
    )
    parser.add_argument(
        "--slack-seconds",
        type=float,
        default=2.0,
        help="polled in time: within the interval + this (default: 2)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the curve here")
    parser.add_argument("--workdir", help="keep logs and raw results here (default: a temporary dir)")


def estimated_minutes(sizes: list[int], args: argparse.Namespace) -> float:
    """Wall time the run will take, roughly: every window plus a fixed overhead per process."""
    compared = [n for n in sizes if args.compare and (args.compare_up_to is None or n <= args.compare_up_to)]
    window = 2 * args.poll_seconds + 60 * args.minutes_per_size
    return (len(sizes) + len(compared)) * (window + OVERHEAD_SECONDS) / 60


def curve(
    implementation: str, points: list[CapacityPoint], *, limit: float, poll_seconds: float
) -> CapacityCurve:
    decision = decide_capacity(
        SizeVerdict(
            runs=p.runs, responses_429=p.responses_429, polled_within_interval=p.polled_within_interval
        )
        for p in points
    )
    model = MODEL_REQUESTS_PER_RUN_INTERVAL[implementation]
    return CapacityCurve(
        implementation=implementation,
        points=tuple(sorted(points, key=lambda p: p.runs)),
        capacity=decision.capacity,
        first_failing_runs=decision.first_failing,
        passes_above_failure=decision.passes_above_failure,
        model_requests_per_run_interval=round(model, 6),
        expected_capacity=expected_capacity(
            limit_requests_per_second=limit, poll_seconds=poll_seconds, requests_per_run_interval=model
        ),
    )


def capacity_ratio(ours: CapacityCurve, provider: CapacityCurve | None) -> float | None:
    """ours' measured capacity / the provider's, or None. Only a provider capacity bracketed by a
    failing size divides; ours passing every size makes the ratio a lower bound (the table says so)."""
    if provider is None or not ours.capacity or not provider.capacity or provider.first_failing_runs is None:
        return None
    return round(ours.capacity / provider.capacity, 2)


def run(args: argparse.Namespace) -> int:
    if args.limit <= 0 or args.poll_seconds <= 0 or args.minutes_per_size <= 0 or not args.sizes:
        raise SystemExit(
            "bench-capacity: --limit, --poll-seconds and --minutes-per-size must be > 0, --sizes set"
        )
    if min(args.sizes) < 1:
        raise SystemExit("bench-capacity: every size must be >= 1")
    sizes = sorted(set(args.sizes))
    burst = args.burst or math.ceil(args.limit)
    budget = args.requests_per_second or args.limit
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="resumable-triggers-capacity-"))
    )
    print(
        f"bench-capacity: {len(sizes)} sizes, limit {args.limit:g}/s (burst {burst}), "
        f"{args.poll_seconds:g} s interval, our budget {budget:g}/s; "
        f"estimate ~{estimated_minutes(sizes, args):.0f} min",
        file=sys.stderr,
        flush=True,
    )
    measured: dict[str, list[CapacityPoint]] = {"ours": [], "provider": []}
    try:
        for n in sizes:
            implementations = ["ours"]
            if args.compare and (args.compare_up_to is None or n <= args.compare_up_to):
                implementations.append("provider")
            for implementation in implementations:
                settings = CapacitySettings(
                    implementation=implementation,
                    runs=n,
                    poll_seconds=args.poll_seconds,
                    limit_requests_per_second=args.limit,
                    limit_burst=burst,
                    requests_per_second=budget,
                    measured_seconds=60 * args.minutes_per_size,
                    slack_seconds=args.slack_seconds,
                )
                started = time.monotonic()
                try:
                    point = run_capacity_point(settings, workdir / f"{implementation}-{n}")
                except ValueError as exc:
                    raise SystemExit(str(exc)) from exc
                measured[implementation].append(point)
                print(
                    f"bench-capacity:   {implementation} {n:,} runs: {point.responses_429:,} x 429, "
                    f"polled in time: {point.polled_within_interval} ({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    ours = curve("ours", measured["ours"], limit=args.limit, poll_seconds=args.poll_seconds)
    provider = (
        curve("provider", measured["provider"], limit=args.limit, poll_seconds=args.poll_seconds)
        if measured["provider"]
        else None
    )
    report = CapacityReport(
        bench=Provenance(
            date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            command=command_line("bench-capacity", args, add_arguments),
            machine=machine(),
            versions=versions(),
            settings={k: v for k, v in vars(args).items() if not k.startswith("_")},
        ),
        limit_requests_per_second=args.limit,
        limit_burst=burst,
        poll_seconds=args.poll_seconds,
        slack_seconds=args.slack_seconds,
        ours=ours,
        provider=provider,
        capacity_ratio=capacity_ratio(ours, provider),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1) + "\n")
    if args.plot:
        from resumable_triggers._bench._capacity_plot import plot

        plot(report, args.plot)
    from resumable_triggers._bench._capacity_table import table

    print(table(report))
    return 0

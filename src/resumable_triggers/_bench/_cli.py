"""``resumable-triggers bench``: arguments, the phases in order, then the report (JSON, plot, table)."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from resumable_triggers._bench._memory import memory_table, memory_targets
from resumable_triggers._bench._memory_phase import MemorySettings, run_memory_phase
from resumable_triggers._bench._phase import PhaseSettings, run_main_phase, run_storm_phase
from resumable_triggers._bench._provenance import command_line, counts, machine, versions
from resumable_triggers._bench._report import comparison, table, targets
from resumable_triggers._bench._results import (
    BenchReport,
    Comparison,
    MainResult,
    Memory,
    Provenance,
    RestartStorm,
    StormResult,
)
from resumable_triggers.databricks.client._watch_plan import PAGE_SIZE

R = TypeVar("R", MainResult, StormResult)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run N DatabricksRunTriggers on one event loop against the emulator in another process, then "
        "(with --compare provider) the Databricks provider's DatabricksExecutionTrigger on the same "
        "kind of runs; measure CPU, memory, connections, requests, loop lag, detection latency and a "
        "restart storm. Each phase gets a fresh emulator and a fresh trigger process."
    )
    parser.add_argument("--runs", type=int, default=1000, help="watched runs (default: 1000)")
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="poll interval (default: 30)")
    parser.add_argument("--compare", choices=["provider"], help="also measure the provider's trigger")
    parser.add_argument(
        "--compare-runs", type=int, help="runs for the comparison (default: --runs); ours is measured at both"
    )
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the report here")
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=30.0,
        help="our triggers' request budget for the workspace (default: 30)",
    )
    parser.add_argument(
        "--emulator-requests-per-second",
        type=float,
        default=40.0,
        help="the emulator's rate limit during restart storms (default: 40; none otherwise)",
    )
    parser.add_argument("--emulator-burst", type=int, default=40, help="its burst (default: 40)")
    parser.add_argument(
        "--spread-seconds",
        type=float,
        help="runs end spread over this long (default: 30 intervals, more if the budget needs it)",
    )
    parser.add_argument(
        "--lead-seconds",
        type=float,
        help="the first runs end this long after the triggers start (default: 3 intervals)",
    )
    parser.add_argument("--failure-every", type=int, default=20, help="every Nth run fails (default: 20)")
    parser.add_argument(
        "--storm-runs", type=int, help="triggers in the restart storm (default: --runs; 0: no storm)"
    )
    parser.add_argument(
        "--storm-seconds", type=float, help="how long the storm is watched (default: 3 intervals + 5 s)"
    )
    parser.add_argument(
        "--greenback",
        action="store_true",
        help="give every trigger task a greenback portal, as Airflow's triggerer does (~8 KiB each)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() in the trigger process after start-up (Airflow's triggerer does not)",
    )
    parser.add_argument(
        "--memory-steps",
        type=counts,
        default=(250, 500, 1000, 2000),
        help="memory phase: trigger counts each process measures at, ascending (default: 250,500,1000,2000); "
        "memory per trigger is the least-squares slope over them",
    )
    parser.add_argument(
        "--memory-repeats",
        type=int,
        default=3,
        help="memory phase: trigger processes per implementation, for the spread (default: 3; 0: no phase)",
    )
    parser.add_argument(
        "--memory-settle-seconds",
        type=float,
        help="memory phase: wait after each step (default: 3 s + 1 s per 250 triggers of the largest step)",
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="run only the memory phase (no main phase, no storm)"
    )
    parser.add_argument("--workdir", help="keep logs and raw results here (default: a temporary dir)")


def default_spread_seconds(runs: int, poll_seconds: float, requests_per_second: float) -> float:
    """30 intervals (runs last 3 to 33 intervals: 1.5 to 16.5 minutes at 30 s, the same at any size),
    or longer if listing plus one confirmation per finishing run would not stay within 80 % of the
    budget: runs / spread + runs / (25 * interval) <= 0.8 * budget."""
    headroom = 0.8 * requests_per_second - runs / (PAGE_SIZE * poll_seconds)
    if headroom <= 0:
        raise SystemExit(
            f"bench: {runs} runs at {poll_seconds:g} s need more than 80 % of {requests_per_second:g} req/s "
            "for listing alone; raise --requests-per-second or --poll-seconds"
        )
    return max(30 * poll_seconds, runs / headroom)


def run(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.poll_seconds <= 0:
        raise SystemExit("bench: --runs must be >= 1 and --poll-seconds > 0")
    if args.memory_only and (args.plot or args.memory_repeats < 1):
        raise SystemExit("bench: --memory-only needs --memory-repeats >= 1 and draws no --plot")
    memory_settings = None
    if args.memory_repeats:
        try:
            memory_settings = MemorySettings(
                steps=args.memory_steps,
                repeats=args.memory_repeats,
                poll_seconds=args.poll_seconds,
                requests_per_second=args.requests_per_second,
                greenback=args.greenback,
                settle_seconds=args.memory_settle_seconds,
            )
        except ValueError as exc:
            raise SystemExit(f"bench: {exc}") from exc
    compare_runs = args.compare_runs or args.runs
    storm_runs = args.runs if args.storm_runs is None else args.storm_runs
    storm_seconds = args.storm_seconds or 3 * args.poll_seconds + 5
    lead = args.lead_seconds if args.lead_seconds is not None else 3 * args.poll_seconds
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="resumable-triggers-bench-"))
    )
    keep = args.workdir is not None

    def phase(mode: str, measure: Callable[[PhaseSettings, Path], R], implementation: str, runs: int) -> R:
        spread = args.spread_seconds or default_spread_seconds(
            runs, args.poll_seconds, args.requests_per_second
        )
        settings = PhaseSettings(
            implementation=implementation,
            runs=runs,
            poll_seconds=args.poll_seconds,
            requests_per_second=args.requests_per_second,
            lead_seconds=lead,
            spread_seconds=spread,
            failure_every=args.failure_every,
            storm_seconds=storm_seconds,
            emulator_requests_per_second=args.emulator_requests_per_second,
            emulator_burst=args.emulator_burst,
            greenback=args.greenback,
            gc_freeze=args.gc_freeze,
        )
        expected = storm_seconds if mode == "storm" else lead + spread + args.poll_seconds
        print(
            f"bench: {implementation} {mode}, {runs:,} runs, {args.poll_seconds:g} s interval "
            f"(~{math.ceil(expected / 60)} min)...",
            file=sys.stderr,
            flush=True,
        )
        started = time.monotonic()
        result = measure(settings, workdir / f"{implementation}-{mode}-{runs}")
        print(f"bench:   done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        return result

    def main(implementation: str, runs: int) -> MainResult:
        return phase("main", run_main_phase, implementation, runs)

    def storm(implementation: str, runs: int) -> StormResult:
        return phase("storm", run_storm_phase, implementation, runs)

    provenance = Provenance(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=command_line("bench", args, add_arguments),
        machine=machine(),
        versions=versions(),
        settings={k: v for k, v in vars(args).items() if not k.startswith("_")},
    )
    ours: MainResult | None = None
    ours_at_compare_runs: MainResult | None = None
    provider: MainResult | None = None
    ratios: Comparison | None = None
    restart_storm: RestartStorm | None = None
    memory: Memory | None = None
    try:
        if not args.memory_only:
            ours = main("ours", args.runs)
            if args.compare:
                if compare_runs != args.runs:
                    ours_at_compare_runs = main("ours", compare_runs)
                provider = main("provider", compare_runs)
                ratios = comparison(ours_at_compare_runs or ours, provider)
            if storm_runs:
                restart_storm = RestartStorm(
                    ours=storm("ours", storm_runs),
                    provider=storm("provider", min(storm_runs, compare_runs)) if args.compare else None,
                )
        if memory_settings is not None:
            started = time.monotonic()
            implementations = ["ours", "provider"] if args.compare else ["ours"]
            memory = run_memory_phase(memory_settings, implementations, workdir)
            print(f"bench:   memory done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    checked = () if ours is None else targets(ours, ratios, restart_storm.ours if restart_storm else None)
    report = BenchReport(
        bench=provenance,
        ours=ours,
        ours_at_compare_runs=ours_at_compare_runs,
        provider=provider,
        comparison=ratios,
        restart_storm=restart_storm,
        memory=memory,
        targets=checked + (memory_targets(memory) if memory is not None else ()),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1) + "\n")
    if args.plot:
        from resumable_triggers._bench._plot import plot

        plot(report, args.plot)
    if ours is not None:
        print(table(report))
        print()
    if memory is not None:
        print(memory_table(memory))
        print()
    for target in report.targets:
        mark = {True: "met   ", False: "MISSED", None: "n/a   "}[target.met]
        note = "" if target.applies else "  (not the size the target is stated for)"
        print(f"{mark} {target.target}: {target.measured}{note}")
    return 1 if any(t.met is False and t.applies for t in report.targets) else 0

"""``resumable-triggers bench-triggerer``: arguments, one deployment, its phases, then the report."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from resumable_triggers._bench._provenance import command_line, counts, machine, versions
from resumable_triggers._bench._results import Provenance
from resumable_triggers._bench._triggerer._deployment import (
    DAG_ID,
    SeedProcess,
    new_fernet_key,
    write_dags_folder,
)
from resumable_triggers._bench._triggerer._phase import Bench, PhaseSettings, capacity_env, run_phase
from resumable_triggers._bench._triggerer._report import (
    AIRFLOW_DEFAULT_CAPACITY,
    comparable,
    comparison,
    plan_phases,
    rss_slope,
    table,
    verdicts,
)
from resumable_triggers._bench._triggerer._results import TriggererPhase, TriggererReport
from resumable_triggers._bench._triggerer._signals import StatsdListener, statsd_env
from resumable_triggers.testing import EmulatorProcess, airflow_connection
from resumable_triggers.testing.airflow import AirflowDeployment

# Airflow assigns a triggerer at most this many new triggers per loop (about a second):
# [triggerer] max_trigger_to_select_per_loop, 50 by default.
PICKUP_PER_SECOND = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Seed N deferred tasks through Airflow's own models into a real Airflow (PostgreSQL, API "
        "server, DAG processor, `airflow triggerer`, no scheduler) and let the triggerer run them "
        "against the emulator in another process: ours, and with --compare provider the provider's "
        "DatabricksExecutionTrigger. Measures the triggerer's whole process tree (CPU, RSS per task, "
        "sockets), the stalls Airflow logs, events and their latency, and which limit bound first."
    )
    parser.add_argument("--sizes", type=counts, default=(1000, 5000, 10000), help="ours: tasks per phase")
    parser.add_argument("--compare", choices=["provider"], help="also run the provider's trigger")
    parser.add_argument(
        "--compare-sizes", type=counts, default=(1000,), help="sizes both run at (default: 1000)"
    )
    parser.add_argument("--poll-seconds", type=float, default=30.0, help="poll interval (default: 30)")
    parser.add_argument(
        "--capacity",
        type=int,
        help=f"[triggerer] capacity (default: Airflow's, {AIRFLOW_DEFAULT_CAPACITY})",
    )
    parser.add_argument(
        "--no-raise-capacity",
        action="store_true",
        help="do not rerun a size above the capacity with the capacity raised to it",
    )
    parser.add_argument(
        "--lead-seconds",
        type=float,
        help="the first runs end this long after seeding (default: 3 intervals + N / 25 s for pick-up)",
    )
    parser.add_argument(
        "--spread-seconds", type=float, help="runs end spread over this long (default: 30 intervals)"
    )
    parser.add_argument("--failure-every", type=int, default=20, help="every Nth run fails (default: 20)")
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the report here")
    parser.add_argument("--workdir", help="keep logs here (default: a temporary dir)")


def _settings(args: argparse.Namespace, implementation: str, triggers: int, capacity: int) -> PhaseSettings:
    lead = args.lead_seconds if args.lead_seconds is not None else 3 * args.poll_seconds + triggers / 25
    spread = args.spread_seconds if args.spread_seconds is not None else 30 * args.poll_seconds
    pickup = triggers / PICKUP_PER_SECOND
    return PhaseSettings(
        implementation=implementation,
        triggers=triggers,
        capacity=capacity,
        capacity_is_default=args.capacity is None,
        poll_seconds=args.poll_seconds,
        lead_seconds=lead,
        spread_seconds=spread,
        failure_every=args.failure_every,
        deadline_seconds=lead + spread + 3 * args.poll_seconds + 2 * pickup + 60.0,
    )


def run(args: argparse.Namespace) -> int:
    sizes = [*args.sizes, *(args.compare_sizes if args.compare else ())]
    if min(sizes) < 1 or args.poll_seconds <= 0 or (args.capacity is not None and args.capacity < 1):
        raise SystemExit("bench-triggerer: sizes and --capacity must be >= 1 and --poll-seconds > 0")
    capacity = args.capacity or AIRFLOW_DEFAULT_CAPACITY
    keys = plan_phases(
        sizes=args.sizes,
        compare_sizes=args.compare_sizes,
        compare=bool(args.compare),
        capacity=capacity,
        raise_capacity=not args.no_raise_capacity,
    )
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rt-bench-triggerer-"))
    workdir.mkdir(parents=True, exist_ok=True)
    provenance = Provenance(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=command_line("bench-triggerer", args, add_arguments),
        machine=machine(),
        versions=versions(),
        settings={k: v for k, v in vars(args).items() if not k.startswith("_")},
    )
    # Airflow imports statsd only when [metrics] statsd_on is set; without the package it would fail.
    has_statsd = importlib.util.find_spec("statsd") is not None
    phases: list[TriggererPhase] = []
    fernet_key = new_fernet_key()
    try:
        with (
            StatsdListener() as statsd,
            EmulatorProcess(run_seconds=3600.0) as emulator,
            AirflowDeployment(
                dags_folder=write_dags_folder(workdir / "dags"),
                database="postgres",
                components=("api-server", "dag-processor", "triggerer"),
                connections={"databricks_default": airflow_connection(emulator.url, emulator.token)},
                env={
                    "AIRFLOW__CORE__FERNET_KEY": fernet_key,
                    # The first phase's capacity: its triggerer is the one the deployment starts.
                    **capacity_env(keys[0].capacity),
                    **(statsd_env(statsd.port) if has_statsd else {}),
                },
                home=workdir / "airflow-home",
                keep_home=args.workdir is not None,
            ) as af,
        ):
            af.rest.wait_for_dag(DAG_ID, timeout_seconds=120.0)
            with SeedProcess(database_url=af.database_url, fernet_key=fernet_key, workdir=workdir) as seeder:
                bench = Bench(
                    airflow=af,
                    seeder=seeder,
                    emulator_url=emulator.url,
                    emulator_token=emulator.token,
                    emulator_port=emulator.port,
                    statsd=statsd if has_statsd else None,
                    workdir=workdir,
                )
                for index, key in enumerate(keys):
                    settings = _settings(args, key.implementation, key.triggers, key.capacity)
                    expected = (
                        settings.lead_seconds + settings.spread_seconds + key.triggers / PICKUP_PER_SECOND
                    )
                    print(
                        f"bench-triggerer: {key.implementation}, {key.triggers:,} tasks, capacity "
                        f"{key.capacity:,} (~{math.ceil(expected / 60)} min)...",
                        file=sys.stderr,
                        flush=True,
                    )
                    started = time.monotonic()
                    phases.append(run_phase(settings, bench, index, restart=index > 0))
                    print(f"bench-triggerer:   done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    ratios = None
    if args.compare:
        size = args.compare_sizes[0]
        ours, provider = comparable(phases, "ours", size), comparable(phases, "provider", size)
        if ours is not None and provider is not None:
            ratios = comparison(ours, provider)
    report = TriggererReport(
        bench=provenance,
        statsd=has_statsd,
        phases=tuple(phases),
        comparison=ratios,
        rss_slope_bytes_per_task=rss_slope([p for p in phases if p.limit_bound != "capacity"]),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1) + "\n")
    if args.plot:
        from resumable_triggers._bench._triggerer._plot import plot

        plot(report, args.plot)
    print(table(report))
    print()
    for line in verdicts(report):
        print(line)
    if not has_statsd:
        print(
            "Airflow's StatsD metrics: not collected (the statsd package is not installed); "
            "stalls come from its log"
        )
    broken = [p for p in phases if p.undelivered or p.wrong_outcomes]
    for p in broken:
        print(f"ERRORS {p.implementation} {p.triggers:,}: " + "; ".join(p.error_details[:5]), file=sys.stderr)
    return 1 if broken else 0

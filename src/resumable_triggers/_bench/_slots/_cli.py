"""``resumable-triggers bench-slots``: arguments, the measurement, then the report (JSON, plot, table)."""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from resumable_triggers._bench._provenance import command_line, machine, versions
from resumable_triggers._bench._results import Provenance
from resumable_triggers._bench._slots._measure import SlotsSettings, run_slots
from resumable_triggers._bench._slots._report import problems, ratios, table
from resumable_triggers._bench._slots._results import IMPLEMENTATIONS, SlotsReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "On a real Airflow (LocalExecutor) against the emulator in another process: N mapped tasks each of "
        "our DatabricksSubmitRunOperator, the provider's with deferrable=True and the provider's synchronous "
        "durable=True, one implementation after another; measure the seconds each logical attempt holds a "
        "worker slot (start to deferred, resume to finish) from the task processes, cross-checked against "
        "Airflow's audit log, and the latency from the run's end at the emulator to the task's success."
    )
    parser.add_argument("--tasks", type=int, default=30, help="mapped tasks per implementation (default: 30)")
    parser.add_argument(
        "--run-seconds", type=float, default=60.0, help="how long each Databricks run lasts (default: 60)"
    )
    parser.add_argument(
        "--poll-seconds", type=int, default=5, help="poll interval of all three, whole seconds (default: 5)"
    )
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=0.2,
        help="how often the task processes are sampled: the slot seconds' resolution (default: 0.2)",
    )
    parser.add_argument(
        "--database", choices=["postgres", "sqlite"], default="postgres", help="Airflow's (default: postgres)"
    )
    parser.add_argument(
        "--order",
        type=_order,
        default=IMPLEMENTATIONS,
        help="the turns the implementations take, comma-separated, to look for an order effect "
        f"(default: {','.join(IMPLEMENTATIONS)})",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="run the three DAGs at once (3 x tasks + 2 worker slots) instead of in turns: fairer on a "
        "machine whose load varies, and about a third of the wall time",
    )
    parser.add_argument("--json", metavar="FILE", help="write the report here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the report here")
    parser.add_argument(
        "--workdir", help="keep the DAG file and Airflow's home (task logs) here (default: a temporary dir)"
    )


def _order(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def run(args: argparse.Namespace) -> int:
    try:
        settings = SlotsSettings(
            tasks=args.tasks,
            run_seconds=args.run_seconds,
            poll_seconds=args.poll_seconds,
            sample_seconds=args.sample_seconds,
            database=args.database,
            order=args.order,
            together=args.together,
        )
    except ValueError as exc:
        raise SystemExit(f"bench-slots: {exc}") from exc
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="resumable-triggers-slots-"))
    )
    provenance = Provenance(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=command_line("bench-slots", args, add_arguments),
        machine=machine(),
        versions=versions(),
        settings={k: v for k, v in vars(args).items() if not k.startswith("_")},
    )
    started = time.monotonic()
    try:
        results = run_slots(settings, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"bench-slots: done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    report = SlotsReport(
        bench=provenance,
        tasks=settings.tasks,
        run_seconds=settings.run_seconds,
        poll_seconds=settings.poll_seconds,
        sample_seconds=settings.sample_seconds,
        database=settings.database,
        together=settings.together,
        implementations=tuple(results),
        ratios=ratios({r.implementation: r for r in results}),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1) + "\n")
    if args.plot:
        from resumable_triggers._bench._slots._plot import plot

        plot(report, args.plot)
    print(table(report))
    found = problems(report)
    for problem in found:
        print(f"PROBLEM {problem}")
    return 1 if found else 0

"""``resumable-triggers demo``: the example DAG on a real Airflow, killed at the worst moments.

Starts the Databricks emulator and an Airflow 3.3 deployment (api-server, scheduler, dag-processor,
triggerer; SQLite, LocalExecutor, a temporary home, 127.0.0.1 only), runs the example DAG
(``dags/example_databricks.py``; ``examples/dags/example_databricks.py`` links to it) and strikes
it: a worker SIGKILLed right after submit, a SIGTERM checkpoint, a triggerer SIGKILLed mid-poll, a
run-now whose failed run is repaired in place. A
live timeline shows what happened, the tasks' and runs' states and the submissions so far; a summary
table and the invariants follow. Exit status 0 when every invariant held, 1 when one did not or the
demo could not finish, 130 when interrupted. Every process it started is stopped on the way out,
on Ctrl-C too. Takes about 1.5 minutes.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-home", action="store_true", help="keep Airflow's home (logs, database) for inspection"
    )


def run(args: argparse.Namespace) -> int:
    # Imported here: `resumable-triggers --help` must not pay for the harness.
    from resumable_triggers._demo._story import Demo
    from resumable_triggers._demo._timeline import Timeline
    from resumable_triggers.testing.airflow import DeploymentError

    signals_received: list[int] = []

    def interrupted(signum: int, frame: FrameType | None) -> None:
        signals_received.append(signum)
        raise KeyboardInterrupt

    # Ctrl-C and SIGTERM (e.g. from a CI runner) stop the demo through its clean-up. Installed even
    # where the shell had SIGINT ignored (a background job), so that no way of stopping it is lost.
    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    timeline = Timeline()
    print(
        "resumable-triggers demo: the example DAG on a real Airflow 3.3 against a Databricks emulator,\n"
        "killed at the worst moments. Every run should happen exactly once.",
        flush=True,
    )
    try:
        with Demo(timeline, keep_home=args.keep_home) as demo:
            try:
                demo.start()
                demo.tell()
                summary, checks = demo.results()
            except (DeploymentError, TimeoutError, ConnectionError, OSError) as exc:
                if signals_received:  # a Ctrl-C also reaches the emulator, which may die first
                    raise KeyboardInterrupt from exc
                timeline.event(f"the demo could not finish: {exc}")
                if demo.airflow is not None:
                    print(demo.airflow.logs.tails(15), file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print("interrupted: everything the demo started was stopped", flush=True)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"\n{summary}\n")
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.what}" + ("" if check.ok else f": {check.detail}"))
    failed = [c for c in checks if not c.ok]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} invariants held in {timeline.elapsed():.0f} s"
        + (": the demo FAILED" if failed else "."),
        flush=True,
    )
    return 1 if failed else 0

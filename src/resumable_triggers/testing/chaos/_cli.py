"""``resumable-triggers chaos``: a seeded chaos campaign on a real Airflow, judged by the checker.

Exit status 0 when no invariant was violated, 1 when one was (the report names the seed, the
invariant and the timeline around it), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, default=1, help="the campaign's seed: same seed, same plan (default 1)"
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the campaign lasts (default 5)")
    parser.add_argument(
        "--topology", choices=("single", "ha"), default="single", help="the Airflow to strike"
    )
    parser.add_argument("--json", metavar="FILE", help="write the plan, the history and the report here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the timeline (needs matplotlib)")
    parser.add_argument(
        "--replay", metavar="FILE", help="rerun the plan recorded in a --json file (or a plan file)"
    )
    parser.add_argument("--plan-only", action="store_true", help="print the plan as JSON and exit")
    parser.add_argument(
        "--check",
        metavar="FILE",
        help="only check the history recorded in a --json file (with --plot, draw it again)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="where Airflow's home and the DAGs go (default: a temporary directory)",
    )


def run(args: argparse.Namespace) -> int:
    from resumable_triggers.testing.chaos._checker import check
    from resumable_triggers.testing.chaos._history import History
    from resumable_triggers.testing.chaos._plan import Plan, make_plan
    from resumable_triggers.testing.chaos._plot import plot
    from resumable_triggers.testing.chaos._report import render, summary

    if args.check:
        raw = json.loads(Path(args.check).read_text())
        history = History.from_json(raw["history"])
    else:
        if args.replay:
            raw = json.loads(Path(args.replay).read_text())
            plan = Plan.from_json(raw.get("plan", raw))
        else:
            try:
                plan = make_plan(seed=args.seed, minutes=args.minutes, topology=args.topology)
            except ValueError as exc:
                print(f"resumable-triggers chaos: {exc}", file=sys.stderr)
                return 2
        if args.plan_only:
            print(plan.dumps())
            return 0
        from resumable_triggers.testing.chaos._runner import Campaign

        history = Campaign(plan, workdir=Path(args.workdir) if args.workdir else None).run()
    violations = check(history)
    print(render(history, violations), flush=True)
    if args.json:
        document = {"history": history.to_json(), "summary": summary(history, violations)}
        if not args.check:
            document["plan"] = plan.to_json()
        Path(args.json).write_text(json.dumps(document))
        print(f"\nplan, history and report written to {args.json} (replay: --replay {args.json})")
    if args.plot:
        problem = plot(history, violations, Path(args.plot))
        print(problem or f"timeline drawn in {args.plot}")
    return 1 if violations else 0

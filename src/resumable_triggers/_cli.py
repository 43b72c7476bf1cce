"""The ``resumable-triggers`` console script.

Each subcommand lives beside the code it drives and exposes ``add_arguments(parser)`` and
``run(args) -> int``; this module only wires them up, importing each lazily so that
``resumable-triggers emulator`` never pays for importing Airflow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "emulator": ("resumable_triggers.testing.emulator._cli", "serve the Databricks Jobs API emulator"),
    "demo": ("resumable_triggers._demo", "run the example DAG on a real Airflow through injected failures"),
    "bench": ("resumable_triggers._bench", "measure triggers at scale against the provider's trigger"),
    "bench-capacity": (
        "resumable_triggers._bench._capacity",
        "runs watched with zero 429s at a workspace rate limit, ours and the provider's",
    ),
    "bench-slots": (
        "resumable_triggers._bench._slots",
        "worker-slot seconds per attempt on a real Airflow, ours vs the provider's",
    ),
    "bench-triggerer": (
        "resumable_triggers._bench._triggerer",
        "deferred tasks on a real `airflow triggerer` with PostgreSQL, ours vs the provider's",
    ),
    "chaos": ("resumable_triggers.testing.chaos._cli", "seeded faults on a real Airflow, checked"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="resumable-triggers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in _COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text)
        # Only the chosen subcommand's module is imported: its arguments are all we need to parse.
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    return int(args._run(args))


if __name__ == "__main__":
    sys.exit(main())

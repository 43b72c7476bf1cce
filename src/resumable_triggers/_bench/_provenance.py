"""Where a benchmark report comes from: the machine, the versions, and the command that reproduces it.

Every ``resumable-triggers bench*`` command stamps its report with these, so that a number in the docs
can be traced to the run that produced it and run again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
from collections.abc import Callable
from pathlib import Path

from resumable_triggers._bench._results import Machine


def counts(text: str) -> tuple[int, ...]:
    """``--sizes 250,500,1000`` and the like, for argparse."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected counts like 250,500,1000, got {text!r}") from exc


def machine() -> Machine:
    import psutil

    cpus = os.cpu_count() or 0
    memory = psutil.virtual_memory().total
    model = ""
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return Machine(
        cpus=cpus,
        cpu_model=model,
        memory_bytes=memory,
        platform=platform.platform(),
        python=platform.python_version(),
        summary=f"{cpus} cores, {memory / 2**30:.0f} GiB, Python {platform.python_version()}",
    )


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("resumable-triggers", "apache-airflow", "apache-airflow-providers-databricks", "aiohttp"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def command_line(
    subcommand: str, args: argparse.Namespace, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> str:
    """The command line that reproduces this run: the options that differ from their defaults (a flag
    alone, a tuple comma-joined)."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    words = ["resumable-triggers", subcommand]
    for name, value in vars(args).items():
        if name.startswith("_") or name == "command" or value == defaults.get_default(name):
            continue
        words.append(f"--{name.replace('_', '-')}")
        if isinstance(value, tuple):
            words.append(",".join(map(str, value)))
        elif value is not True:
            words.append(str(value))
    return shlex.join(words)

"""``resumable-triggers bench``: our trigger at scale, side by side with the Databricks provider's.

The orchestrator (this process) starts, for each phase, a fresh emulator process and a fresh trigger
process (``_worker``: real trigger classes, one asyncio loop, as Airflow's triggerer runs them),
submits runs that finish at staggered, planned times, and measures the trigger process from outside
(``_sampler``: CPU, RSS, TCP connections) and the emulator's request counters. Phases:

- ``ours`` / ``provider`` main: N triggers until every run's event fired (CPU, RSS per run,
  connections, requests per run per interval, loop lag, detection latency);
- restart storm: N triggers started at once on long runs, behind an emulator rate limit (requests per
  second against the budget, 429s, time until every run was first polled).

``_phase`` runs a phase and ``_metrics`` turns what it measured into a typed result; ``_results`` holds
the report's types and its JSON; ``_report`` checks the issue's targets and prints a table; ``_plot``
draws the PNG.
"""

from __future__ import annotations

from resumable_triggers._bench._cli import add_arguments, run

__all__ = ["add_arguments", "run"]

"""``resumable-triggers bench-triggerer``: our trigger and the provider's on a real ``airflow triggerer``.

The synthetic ``bench`` runs triggers on one event loop of its own; this one asks Airflow's triggerer
itself (PostgreSQL, no scheduler) to run N deferred tasks and measures it from outside::

    orchestrator (this process)
    ├── EmulatorProcess ............ the Databricks Jobs API, another process
    ├── AirflowDeployment .......... PostgreSQL, api-server, dag-processor, triggerer
    ├── SeedProcess (``_seed``) .... deferred task instances through Airflow's own models
    ├── StatsdListener (``_signals``) Airflow's metrics over UDP, when statsd is installed
    └── per phase (``_phase``): restart the triggerer at a capacity, seed, end runs on a
        schedule, sample its process tree and the database, read the events back

``_report`` holds the pure decisions (phases, the binding limit, ratios, the table), ``_results`` the
report's types and JSON, ``_plot`` the PNG.
"""

from __future__ import annotations

from resumable_triggers._bench._triggerer._cli import add_arguments, run

__all__ = ["add_arguments", "run"]

"""``resumable-triggers bench-slots``: the seconds a worker slot is held per logical attempt, on a real
Airflow, for our DatabricksSubmitRunOperator and the provider's (``deferrable=True``, and synchronous
``durable=True``), and the latency from a run's end to its task's ``success``.

``_measure`` runs one deployment and the three DAGs ``_dag`` generates, sampling the task processes;
``_timeline`` turns the samples (and Airflow's audit log, the cross-check) into segments; ``_results``
holds the report's types and JSON; ``_report`` the ratios and the table; ``_plot`` the PNG.
"""

from __future__ import annotations

from resumable_triggers._bench._slots._cli import add_arguments, run

__all__ = ["add_arguments", "run"]

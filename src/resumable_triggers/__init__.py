"""resumable-triggers: crash-safe, deferrable Airflow operators for long-running external jobs.

Layout (dependencies point downwards only):

- ``resumable_triggers.resume``: provider-agnostic resume machinery (record, decision, base operator).
- ``resumable_triggers.databricks.client``: an asyncio Databricks Jobs client; never imports Airflow.
- ``resumable_triggers.databricks``: thin Airflow adapters (operators, trigger, connection mapping).
- ``resumable_triggers.testing``: a Databricks Jobs API emulator (``testing.emulator``), pytest fixtures
  and a real-Airflow harness (``testing.airflow``), all public.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

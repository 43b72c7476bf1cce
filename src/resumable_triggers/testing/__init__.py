"""Public testing tools: a Databricks emulator, a real-Airflow harness, clocks, and pytest fixtures.

Two packages that know nothing of each other, and face opposite ways::

    resumable_triggers.testing
    ├── emulator/      a Databricks Jobs API in-process or in a subprocess; never imports Airflow
    ├── airflow/       a real Airflow deployment in subprocesses; knows nothing of Databricks
    ├── _clock         ManualClock (the emulator's stepped time), VirtualTime (a client's clock and sleep)
    └── _pytest_plugin the ``databricks_emulator*`` fixtures (registered as a pytest plugin)

The emulator's names are re-exported here, where users have always imported them. The harness is
imported from ``resumable_triggers.testing.airflow`` (``resumable_triggers.testing.deployment`` is its
old name, kept as an alias).
"""

from __future__ import annotations

from ._clock import ManualClock, VirtualTime
from .emulator import (
    Counters,
    Emulator,
    EmulatorControl,
    EmulatorProcess,
    EmulatorServer,
    RequestRecord,
    UnknownRunError,
    airflow_connection,
    emulator_in_thread,
)

__all__ = [
    "Counters",
    "Emulator",
    "EmulatorControl",
    "EmulatorProcess",
    "EmulatorServer",
    "ManualClock",
    "RequestRecord",
    "UnknownRunError",
    "VirtualTime",
    "airflow_connection",
    "emulator_in_thread",
]

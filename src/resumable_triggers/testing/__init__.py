"""Public testing tools: a Databricks emulator, a real-Airflow harness, clocks, and pytest fixtures.

Two packages that know nothing of each other, and face opposite ways::

    resumable_triggers.testing
    ├── emulator/      a Databricks Jobs API in-process or in a subprocess; never imports Airflow
    ├── airflow/       a real Airflow deployment in subprocesses; knows nothing of Databricks
    ├── _clock         ManualClock (the emulator's stepped time), VirtualTime (a client's clock and sleep)
    └── _pytest_plugin the ``databricks_emulator*`` fixtures (registered as a pytest plugin)

The emulator's names are re-exported here, where users have always imported them, but lazily (PEP
562): importing ``resumable_triggers.testing.airflow`` must not import the emulator, and every Airflow
process of a deployment imports the harness's hostname callable. The harness is imported from
``resumable_triggers.testing.airflow`` (``resumable_triggers.testing.deployment`` is its old name, kept
as an alias).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _lazy

if TYPE_CHECKING:
    from ._clock import ManualClock, VirtualTime
    from .emulator import (
        ControlSurface,
        Counters,
        Emulator,
        EmulatorControl,
        EmulatorFactory,
        EmulatorHandle,
        EmulatorProcess,
        EmulatorServer,
        RequestRecord,
        UnknownRunError,
        airflow_connection,
        emulator_in_thread,
    )

__all__ = [
    "ControlSurface",
    "Counters",
    "Emulator",
    "EmulatorControl",
    "EmulatorFactory",
    "EmulatorHandle",
    "EmulatorProcess",
    "EmulatorServer",
    "ManualClock",
    "RequestRecord",
    "UnknownRunError",
    "VirtualTime",
    "airflow_connection",
    "emulator_in_thread",
]

# Where each public name lives; the TYPE_CHECKING imports above say the same to type checkers.
__getattr__, __dir__ = _lazy.lazy_exports(
    globals(), {name: ".emulator" for name in __all__} | {"ManualClock": "._clock", "VirtualTime": "._clock"}
)

"""What the pytest fixtures hand a test: a served emulator (``EmulatorHandle``), or a way to make one.

A handle is a plain value (no pytest in it), so tests may annotate with it, and build one from
``emulator_in_thread`` themselves. The factory is the ``databricks_emulator_factory`` fixture's type,
modelled on pytest-aiohttp's ``aiohttp_server``: the test says what it wants, the fixture serves it
and stops it at teardown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ._connection import airflow_connection
from ._emulator import Emulator


@dataclass(frozen=True, slots=True)
class EmulatorHandle:
    """An emulator being served at ``url`` (``http://127.0.0.1:PORT``), accepting ``token``."""

    url: str
    token: str
    emulator: Emulator

    def environment(self) -> dict[str, str]:
        """``DATABRICKS_HOST``, ``DATABRICKS_TOKEN`` and ``AIRFLOW_CONN_DATABRICKS_DEFAULT`` pointing at
        it: what databricks-sdk and the Airflow provider read."""
        return {
            "DATABRICKS_HOST": self.url,
            "DATABRICKS_TOKEN": self.token,
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": airflow_connection(self.url, self.token),
        }


class EmulatorFactory(Protocol):
    """Serve an emulator for the rest of the test: ``factory(run_seconds=1.0, clock=ManualClock())``
    builds ``Emulator(**settings)``; ``factory(emulator)`` serves one the test built itself."""

    def __call__(self, emulator: Emulator | None = None, /, **settings: Any) -> EmulatorHandle: ...

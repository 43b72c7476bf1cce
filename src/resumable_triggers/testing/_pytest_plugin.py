"""pytest fixtures for the Databricks emulator (registered as the ``resumable_triggers`` plugin).

- ``databricks_emulator``: a fresh ``Emulator`` served from a thread; yields an ``EmulatorHandle``
  (``.url``, ``.token``, ``.emulator``).
- ``databricks_emulator_env``: the same, with ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` and
  ``AIRFLOW_CONN_DATABRICKS_DEFAULT`` pointing at it for the test's duration.

This module must not import Airflow (nor anything that does): pytest loads plugins before test
configuration sets Airflow's environment, and Airflow reads its configuration on import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .emulator import Emulator, airflow_connection, emulator_in_thread


@dataclass(frozen=True, slots=True)
class EmulatorHandle:
    url: str
    token: str
    emulator: Emulator


@pytest.fixture
def databricks_emulator() -> Iterator[EmulatorHandle]:
    """A fresh emulator (5 s runs, real clock) served on 127.0.0.1 from a thread."""
    emulator = Emulator()
    with emulator_in_thread(emulator) as server:
        yield EmulatorHandle(server.url, emulator.token, emulator)


@pytest.fixture
def databricks_emulator_env(
    databricks_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> EmulatorHandle:
    """``databricks_emulator`` plus DATABRICKS_HOST, DATABRICKS_TOKEN and
    AIRFLOW_CONN_DATABRICKS_DEFAULT set to reach it; all restored afterwards."""
    handle = databricks_emulator
    monkeypatch.setenv("DATABRICKS_HOST", handle.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", handle.token)
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", airflow_connection(handle.url, handle.token))
    return handle

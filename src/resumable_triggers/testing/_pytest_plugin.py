"""pytest fixtures for the Databricks emulator (registered as the ``resumable_triggers`` plugin).

- ``databricks_emulator_factory``: ``factory(**settings)`` serves a new ``Emulator(**settings)`` (or
  ``factory(emulator)`` one the test built) from a thread, and returns an ``EmulatorHandle``
  (``.url``, ``.token``, ``.emulator``); every emulator it served stops at teardown. As many per test
  as it likes, each on a port of its own.
- ``databricks_emulator``: ``databricks_emulator_factory()``: 5 s runs, real clock.
- ``databricks_emulator_env``: the same, with ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` and
  ``AIRFLOW_CONN_DATABRICKS_DEFAULT`` pointing at it for the test's duration.

Served from a thread, not the test's event loop, so that synchronous tests (``dag.test()``, the
provider's hook) and async ones alike can call it, and its work never shows up as lag on the test's
loop. This module must not import Airflow (nor anything that does): pytest loads plugins before test
configuration sets Airflow's environment, and Airflow reads its configuration on import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from .emulator import Emulator, EmulatorFactory, EmulatorHandle, emulator_in_thread


@pytest.fixture
def databricks_emulator_factory() -> Iterator[EmulatorFactory]:
    """``factory(**settings)`` or ``factory(emulator)``: an emulator served on 127.0.0.1 until teardown."""
    with contextlib.ExitStack() as served:

        def factory(emulator: Emulator | None = None, /, **settings: Any) -> EmulatorHandle:
            if emulator is not None and settings:
                raise TypeError(
                    f"databricks_emulator_factory() takes an Emulator or its settings, not both: {settings}"
                )
            if emulator is None:
                emulator = Emulator(**settings)
            server = served.enter_context(emulator_in_thread(emulator))
            return EmulatorHandle(server.url, emulator.token, emulator)

        yield factory


@pytest.fixture
def databricks_emulator(databricks_emulator_factory: EmulatorFactory) -> EmulatorHandle:
    """A fresh emulator (5 s runs, real clock) served on 127.0.0.1 from a thread."""
    return databricks_emulator_factory()


@pytest.fixture
def databricks_emulator_env(
    databricks_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> EmulatorHandle:
    """``databricks_emulator`` plus DATABRICKS_HOST, DATABRICKS_TOKEN and
    AIRFLOW_CONN_DATABRICKS_DEFAULT set to reach it; all restored afterwards."""
    for name, value in databricks_emulator.environment().items():
        monkeypatch.setenv(name, value)
    return databricks_emulator

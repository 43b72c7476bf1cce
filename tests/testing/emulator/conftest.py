"""Fixtures for the emulator's tests: a stepped clock, an emulator, served, and a raw API client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from emulator_testkit import Api

from resumable_triggers.testing import Emulator, EmulatorFactory, EmulatorHandle, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    """10-second runs on a clock that only moves when the test advances it (not served: ``served``)."""
    return Emulator(run_seconds=10.0, clock=clock)


@pytest.fixture
def served(emulator: Emulator, databricks_emulator_factory: EmulatorFactory) -> EmulatorHandle:
    """``emulator``, served on 127.0.0.1."""
    return databricks_emulator_factory(emulator)


@pytest_asyncio.fixture
async def api(served: EmulatorHandle) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, served.url, served.token)

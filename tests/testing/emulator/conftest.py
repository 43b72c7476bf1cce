"""Fixtures for the emulator's tests: a stepped clock, an emulator, servers, a raw API client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import pytest_asyncio
from emulator_testkit import Api

from resumable_triggers.testing import Emulator, EmulatorServer, ManualClock, emulator_in_thread


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    """10-second runs on a clock that only moves when the test advances it."""
    return Emulator(run_seconds=10.0, clock=clock)


@pytest_asyncio.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    async with EmulatorServer(emulator) as server, aiohttp.ClientSession() as session:
        yield Api(session, server.url, emulator.token)


@pytest.fixture
def served(emulator: Emulator) -> Iterator[EmulatorServer]:
    """The emulator served from a thread, for synchronous clients."""
    with emulator_in_thread(emulator) as server:
        yield server

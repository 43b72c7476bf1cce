"""Fixtures for the client tests: a real emulator over real HTTP, and a fake clock for retry waits."""

from __future__ import annotations

import pytest
from databricks.sdk.config import Config

from resumable_triggers.databricks.client import SdkHeaderProvider
from resumable_triggers.testing import Emulator, EmulatorFactory, ManualClock, VirtualTime

TOKEN = "dapi-emulator-token"


@pytest.fixture
def fake_time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def clock() -> ManualClock:
    """The emulator's virtual time: runs progress only when a test advances it."""
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Emulator:
    return Emulator(token=TOKEN, run_seconds=5.0, clock=clock)


@pytest.fixture
def emulator_url(emulator: Emulator, databricks_emulator_factory: EmulatorFactory) -> str:
    """The emulator served from a thread of its own, like a remote workspace: its work never shows up
    as lag on the test's event loop, and synchronous callers (run_sync) can reach it too."""
    return databricks_emulator_factory(emulator).url


@pytest.fixture
def pat(emulator_url: str) -> SdkHeaderProvider:
    """databricks-sdk PAT auth against the emulator, as a trigger would build it."""
    return SdkHeaderProvider(lambda: Config(host=emulator_url, token=TOKEN), identity="test:pat")

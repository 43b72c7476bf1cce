"""Fakes and helpers shared by the client tests (test modules cannot import conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    Run,
    RunWatch,
    RunWatcher,
    WatcherSettings,
)
from resumable_triggers.testing import Emulator, VirtualTime

# Watcher settings for tests: a first sweep 0.05 s after the watches, and no jitter to step around.
FAST = WatcherSettings(coalesce_seconds=0.05, jitter_fraction=0.0)
# Retries with small, known waits (1, 2, 4, 8 s + up to 0.5 s), and a budget that never paces.
RETRYING = ClientSettings(
    requests_per_second=1000,
    burst=1000,
    retry_budget_seconds=60,
    backoff_initial_seconds=1,
    backoff_max_seconds=8,
    jitter_seconds=0.5,
)
SPEC = {"run_name": "r", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}


class SteppedTime:
    """Virtual time that passes only when the test steps it, for code that sleeps in a loop.

    ``monotonic`` and ``sleep`` are the seams to inject; ``time`` is the ``VirtualTime`` underneath
    (its ``sleeps`` list every sleep that ended). A sleep lasts until ``step()`` (or ``wake()``),
    which ends it, the clock moving on by its length; ``step`` returns once the code sleeps again, so
    what the code did between the two sleeps (one watcher sweep, requests and deliveries included) is
    over, and can be counted exactly. A sleep cancelled while held (a watcher woken early) ends
    without moving time.
    """

    def __init__(self) -> None:
        self.time = VirtualTime()
        self._held: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        self._asleep: asyncio.Future[None] | None = None

    def monotonic(self) -> float:
        return self.time.monotonic()

    async def sleep(self, seconds: float) -> None:
        release = asyncio.get_running_loop().create_future()
        self._held.put_nowait(release)
        await release
        await self.time.sleep(seconds)

    async def step(self) -> None:
        """End the code's current sleep (waiting for it to start), then wait until it sleeps again."""
        await self.wake()
        self._asleep = await self._next_sleep()

    async def wake(self) -> None:
        """End the code's current sleep (waiting for it to start), for a last step: code that has
        nothing left to wait for (a watcher whose runs all finished) never sleeps again."""
        current, self._asleep = self._asleep, None
        if current is None or current.done():
            current = await self._next_sleep()
        current.set_result(None)

    async def _next_sleep(self) -> asyncio.Future[None]:
        while True:
            # A deadline, not a bound: code that never sleeps again fails here by name.
            release = await asyncio.wait_for(self._held.get(), timeout=10)
            if not release.done():
                return release


class FakeConfig:
    """Stands in for databricks-sdk's ``Config``: ``authenticate()`` may block like an OAuth refresh.

    With a ``gate``, ``authenticate()`` blocks its thread until the test opens the gate (at most 10 s):
    ``entered`` is set once it blocks, and ``opened_in_time`` says whether the gate opened while it
    waited. Code that ran it on the event loop's thread would keep the test from ever opening it.
    """

    def __init__(self, headers: dict[str, str], *, gate: threading.Event | None = None) -> None:
        self._headers = headers
        self._gate = gate
        self.entered = threading.Event()
        self.opened_in_time: bool | None = None
        self.authentications = 0

    def authenticate(self) -> dict[str, str]:
        self.authentications += 1
        self.entered.set()
        if self._gate is not None:
            self.opened_in_time = self._gate.wait(timeout=10)  # blocking, as the SDK's token refresh is
        return dict(self._headers)

    def oauth_token(self) -> object:
        raise ValueError("OAuth tokens are not available for pat authentication.")


async def entered(config: FakeConfig) -> None:
    """Wait, without blocking the loop, until ``config.authenticate()`` runs in its thread."""
    assert await asyncio.to_thread(config.entered.wait, 10), "authenticate() was never called"


async def eventually(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (a deadline, not a bound: it fails by name)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - another module's state, with no event to wait on
            await asyncio.sleep(0)


async def create_job(url: str, token: str, settings: dict[str, Any]) -> int:
    """``jobs/create`` straight over HTTP: the client under test has no business creating jobs."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/2.2/jobs/create", json=settings, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        response.raise_for_status()
        return int((await response.json())["job_id"])


def requests(emulator: Emulator, endpoint: str) -> int:
    return emulator.counters().requests_by_endpoint.get(endpoint, 0)


async def next_of(watch: RunWatch) -> Run:
    return await asyncio.wait_for(anext(watch), timeout=10)


def stepped(client: DatabricksClient, time: SteppedTime, settings: WatcherSettings = FAST) -> RunWatcher:
    """A watcher on ``time``; its client keeps real time (no budget or retry waits to step through)."""
    return RunWatcher(client, settings=settings, clock=time.monotonic, sleep=time.sleep)


@contextlib.asynccontextmanager
async def watching(
    watcher: RunWatcher, run_ids: list[int], interval_seconds: float = 30.0
) -> AsyncIterator[list[RunWatch]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(watcher.watch(run_id, interval_seconds=interval_seconds))
            for run_id in run_ids
        ]

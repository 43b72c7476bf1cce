"""Fakes and helpers shared by the client tests (test modules cannot import conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp

from resumable_triggers.testing import VirtualTime


class LoopLagProbe:
    """Measures how late the event loop wakes a task that sleeps ``interval_seconds`` at a time.

    A blocking call anywhere on the loop shows up as lag; ``max_lag_seconds`` is the worst seen.
    """

    def __init__(self, interval_seconds: float = 0.01) -> None:
        self.interval_seconds = interval_seconds
        self.max_lag_seconds = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLagProbe:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval_seconds)
            lag = loop.time() - started - self.interval_seconds
            self.max_lag_seconds = max(self.max_lag_seconds, lag)
            self.samples += 1


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
    """Stands in for databricks-sdk's ``Config``: ``authenticate()`` blocks like an OAuth refresh."""

    def __init__(self, headers: dict[str, str], *, block_seconds: float = 0.0) -> None:
        self._headers = headers
        self._block_seconds = block_seconds
        self.authentications = 0

    def authenticate(self) -> dict[str, str]:
        self.authentications += 1
        time.sleep(self._block_seconds)  # deliberately blocking, as the SDK's token refresh is
        return dict(self._headers)

    def oauth_token(self) -> object:
        raise ValueError("OAuth tokens are not available for pat authentication.")


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

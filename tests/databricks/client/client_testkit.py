"""Fakes and helpers shared by the client tests (test modules cannot import conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp


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

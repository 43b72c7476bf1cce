"""One API request, sent reliably: pacing, auth headers, retries within budgets, a connection slot.

``DatabricksClient`` says *what* to ask (one method per endpoint); a ``Transport`` says *how*: each
attempt first waits its turn in the workspace's ``RequestBudget``, takes the identity's current
headers (re-minted once, at once, after a 401/403), holds one of ``max_connections`` slots, and goes
out through ``_http.send_once``. A failure is retried as ``_retry``'s table says, within
``retry_budget_seconds`` (and ``connect_budget_seconds`` until any attempt got an HTTP answer);
waiting in the budget queue counts against neither, since thousands of pollers queue by design.
A call made while its caller is being hurried (``_hurry``: a SIGTERM waits for its answer) stops
backing off and stops queueing at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from resumable_triggers._clock import Clock, Sleep
from resumable_triggers._hurry import current_hurry, wait_unless_hurried
from resumable_triggers.databricks.client._auth import HeaderProvider
from resumable_triggers.databricks.client._budget import RequestBudget
from resumable_triggers.databricks.client._errors import (
    ApiError,
    AuthError,
    CredentialsError,
    DatabricksError,
    RetriesExhausted,
    TransportError,
)
from resumable_triggers.databricks.client._http import env_proxy, send_once
from resumable_triggers.databricks.client._retry import retry_delay
from resumable_triggers.databricks.client._settings import ClientSettings

__all__ = ["Transport"]

logger = logging.getLogger(__name__)


class Transport:
    """Sends the requests of one client: one workspace ``host``, one identity's ``headers``."""

    def __init__(
        self,
        host: str,
        headers: HeaderProvider,
        *,
        settings: ClientSettings,
        budget: RequestBudget,
        clock: Clock,
        sleep: Sleep,
        rng: random.Random,
    ) -> None:
        self.host = host
        self.settings = settings
        self._headers = headers
        self._budget = budget
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._proxy = env_proxy(host)
        # Created lazily on the running loop; keeps connection-pool waits out of aiohttp's timeouts.
        self._slots: asyncio.Semaphore | None = None

    async def call(
        self,
        session: Callable[[], aiohttp.ClientSession],
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        run_id: int | None = None,
    ) -> dict[str, Any]:
        """Send one API request with pacing, auth, and the retry policy of ``_retry``; the JSON answer.

        ``session`` gives the open session for each attempt (or raises when the client was closed).
        ``idempotent`` defaults to True for GET. Time spent queueing in the request budget does not
        count against the retry budget: thousands of pollers queue by design.
        """
        idempotent = method == "GET" if idempotent is None else idempotent
        query = {key: _query_value(value) for key, value in (params or {}).items()}
        started = self._clock()
        queued = 0.0
        attempt = 0
        reauthenticated = False
        answered = False  # did any attempt get an HTTP answer? Until one does, the connect budget rules
        hurry = current_hurry()
        while True:
            attempt += 1
            before = self._clock()
            await wait_unless_hurried(self._budget.acquire(), hurry)
            queued += self._clock() - before
            try:
                headers = await self._headers.headers()
                timeout = None
                if not answered:
                    left = self.settings.connect_budget_seconds - (self._clock() - started - queued)
                    timeout = max(left, self.settings.connect_timeout_seconds)
                return await self._send(
                    session(), method, endpoint, query, body, headers, attempt, run_id, timeout
                )
            except AuthError as exc:
                if reauthenticated:
                    raise
                # Expired or revoked credentials: re-mint once, retry at once (no wait, no budget).
                reauthenticated = True
                self._headers.invalidate(headers)
                error: DatabricksError = exc
                delay = 0.0
            except (ApiError, TransportError, CredentialsError) as exc:
                maybe_delay = retry_delay(
                    exc, attempt=attempt, idempotent=idempotent, settings=self.settings, rng=self._rng
                )
                if maybe_delay is None:
                    raise
                error, delay = exc, maybe_delay if hurry is None else hurry.cap(maybe_delay)
            answered = answered or isinstance(error, ApiError)
            if isinstance(error, ApiError) and error.status == 429:
                self._budget.pause(error.retry_after_seconds or delay)
            elapsed = self._clock() - started - queued
            budget = "retry_budget_seconds" if answered else "connect_budget_seconds"
            if elapsed + delay > min(self.settings.retry_budget_seconds, getattr(self.settings, budget)):
                raise RetriesExhausted(
                    endpoint=endpoint,
                    attempts=attempt,
                    elapsed_seconds=elapsed,
                    last_error=error,
                    budget=budget,
                ) from error
            if delay > 0:
                logger.info(
                    "Databricks %s %s on %s failed (%s); retrying in %.1f s%s (attempt %d, %.1f of %.0f s "
                    "retry budget used)",
                    method,
                    endpoint,
                    self.host,
                    _describe(error),
                    delay,
                    ", hurried" if hurry is not None and hurry.hurried else "",
                    attempt,
                    elapsed,
                    self.settings.retry_budget_seconds,
                )
                if hurry is None:
                    await self._sleep(delay)
                else:
                    await hurry.wait(delay, self._sleep)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        endpoint: str,
        query: Mapping[str, str],
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        attempt: int,
        run_id: int | None,
        timeout_seconds: float | None,
    ) -> dict[str, Any]:
        """One attempt, holding one of ``max_connections`` slots so aiohttp's pool never makes it wait.

        ``timeout_seconds`` shortens the session's per-attempt timeout (None: keep it)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_connections)
        async with self._slots:
            return await send_once(
                session,
                method=method,
                host=self.host,
                endpoint=endpoint,
                query=query,
                body=body,
                headers=headers,
                proxy=self._proxy,
                attempt=attempt,
                run_id=run_id,
                timeout_seconds=timeout_seconds,
            )


def _query_value(value: Any) -> str:
    # aiohttp rejects bools in params; the API wants lowercase JSON literals.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe(error: DatabricksError) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status} {error.error_code or ''}".rstrip()
    return type(error).__name__

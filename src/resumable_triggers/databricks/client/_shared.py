"""Process-wide sharing: one client (one session) per event loop per workspace identity.

A triggerer runs thousands of triggers on one loop. Each ``async with shared_client(...)`` takes a
lease on the loop's client for ``(host, identity)``, creating it on first use; the request budget is
shared more widely still, per ``(loop, host)``, because Databricks rate-limits a workspace, not a
credential. Sessions are closed:

- ``idle_grace_seconds`` (30 s) after the last lease is released, so a trigger that finishes while
  another is about to start does not cost a new session (and TLS handshake);
- when the loop shuts down (``asyncio.run`` or ``asyncio.Runner``, as the Airflow triggerer uses),
  through an async generator whose ``finally`` runs during ``loop.shutdown_asyncgens()``, after
  every task (and so every lease) has been cancelled. Loops closed without ``shutdown_asyncgens`` leak
  their sessions, and aiohttp warns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from resumable_triggers._clock import Clock, Sleep
from resumable_triggers.databricks.client._auth import HeaderProvider
from resumable_triggers.databricks.client._budget import RequestBudget
from resumable_triggers.databricks.client._client import DatabricksClient
from resumable_triggers.databricks.client._http import normalise_host
from resumable_triggers.databricks.client._settings import ClientSettings

__all__ = ["shared_client"]

logger = logging.getLogger(__name__)

IDLE_GRACE_SECONDS = 30.0


@dataclass(eq=False)
class _Entry:
    client: DatabricksClient
    leases: int = 0
    idle_timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _LoopRegistry:
    """Everything shared on one event loop. Touched only from that loop's thread."""

    entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)
    budgets: dict[str, RequestBudget] = field(default_factory=dict)
    closing: set[asyncio.Task[None]] = field(default_factory=set)
    # Strong reference: the loop tracks its async generators only weakly.
    shutdown_hook: AsyncGenerator[None, None] | None = None


# Weak keys: a registry dies with its loop, whatever happened to the sessions.
_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopRegistry] = weakref.WeakKeyDictionary()
_registries_lock = threading.Lock()


@asynccontextmanager
async def shared_client(
    host: str,
    headers: HeaderProvider,
    *,
    settings: ClientSettings | None = None,
    idle_grace_seconds: float = IDLE_GRACE_SECONDS,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[DatabricksClient]:
    """Lease the running loop's client for ``(host, headers.identity)``; release it on exit.

    The first lease creates the client with ``headers``, ``settings``, ``clock`` and ``sleep`` (test
    seams, as on ``DatabricksClient``); later leases reuse it as is (a differing ``settings`` is logged
    and ignored). The request budget is per workspace: the first
    client of a host fixes its ``requests_per_second`` and ``burst`` for every identity on that host.
    ``idle_grace_seconds`` applies when this lease is the last to be released. Never close the
    yielded client yourself.
    """
    loop = asyncio.get_running_loop()
    registry = await _registry_for(loop)
    key = (normalise_host(host), headers.identity)
    entry = registry.entries.get(key)
    if entry is None:
        settings = settings or ClientSettings()
        budget = registry.budgets.setdefault(
            key[0],
            RequestBudget(
                requests_per_second=settings.requests_per_second,
                burst=settings.burst,
                clock=clock,
                sleep=sleep,
            ),
        )
        client = DatabricksClient(key[0], headers, settings=settings, budget=budget, clock=clock, sleep=sleep)
        await client.__aenter__()  # only creates the session: no await point, so no race on `entries`
        entry = registry.entries[key] = _Entry(client)
        logger.debug("Opened shared Databricks session for %s as %s", key[0], key[1])
    elif settings is not None and settings != entry.client.settings:
        logger.warning(
            "shared_client for %s as %s: ignoring settings that differ from the first lease's (%r)",
            key[0],
            key[1],
            entry.client.settings,
        )
    if entry.idle_timer is not None:
        entry.idle_timer.cancel()
        entry.idle_timer = None
    entry.leases += 1
    try:
        yield entry.client
    finally:
        entry.leases -= 1
        if entry.leases == 0 and registry.entries.get(key) is entry:
            # call_later rather than a sleeping task: a timer pending at loop shutdown simply never
            # fires, and the shutdown hook closes the session instead.
            entry.idle_timer = loop.call_later(idle_grace_seconds, _close_idle, registry, key, entry)


def _close_idle(registry: _LoopRegistry, key: tuple[str, str], entry: _Entry) -> None:
    if entry.leases or registry.entries.get(key) is not entry:
        return
    del registry.entries[key]
    logger.debug("Closing idle shared Databricks session for %s as %s", *key)
    task = asyncio.get_running_loop().create_task(entry.client.aclose())
    registry.closing.add(task)
    task.add_done_callback(registry.closing.discard)


async def _registry_for(loop: asyncio.AbstractEventLoop) -> _LoopRegistry:
    with _registries_lock:
        registry = _registries.get(loop)
        if registry is not None:
            return registry
        registry = _registries[loop] = _LoopRegistry()
    hook = _close_on_shutdown(registry)
    registry.shutdown_hook = hook
    # Run to the first `yield` so the `finally` is armed; the loop now finalises it at shutdown.
    await hook.__anext__()
    return registry


async def _close_on_shutdown(registry: _LoopRegistry) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        entries = list(registry.entries.values())
        registry.entries.clear()
        for entry in entries:
            if entry.idle_timer is not None:
                entry.idle_timer.cancel()
        await asyncio.gather(*(entry.client.aclose() for entry in entries), *registry.closing)
        if entries:
            logger.debug("Closed %d shared Databricks session(s) at event-loop shutdown", len(entries))

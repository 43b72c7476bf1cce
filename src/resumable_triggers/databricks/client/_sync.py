"""The one bridge from synchronous code (an operator's ``execute``) to the async client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from resumable_triggers.databricks.client._auth import HeaderProvider
from resumable_triggers.databricks.client._client import DatabricksClient
from resumable_triggers.databricks.client._settings import ClientSettings

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(
    call: Callable[[DatabricksClient], Awaitable[T]],
    *,
    host: str,
    headers: HeaderProvider,
    settings: ClientSettings | None = None,
) -> T:
    """Run ``call(client)`` to completion on a fresh event loop with a private session; return its result.

    For worker-side code only, e.g. ``run_sync(lambda c: c.submit_run(spec, idempotency_token=t),
    host=host, headers=provider)``. Each call opens and closes its own session, which is right for the
    handful of calls an operator makes; ``headers`` may be reused across calls so the SDK ``Config``
    (and its OAuth token) is built once. Raises RuntimeError inside a running event loop: await the
    client there instead, or the loop would block.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("run_sync was called from a running event loop; use `await` on the client there")

    async def main() -> T:
        async with DatabricksClient(host, headers, settings=settings) as client:
            return await call(client)

    return asyncio.run(main())

"""The worker side's one bridge into async code: every remote call is written once, async.

An operator's ``execute`` is synchronous; its remote calls are coroutines that the triggerer awaits
on its loop. The worker runs each to completion on a fresh loop with ``run_blocking``, which
refuses to run inside a loop (it would stall every other coroutine on it, e.g. every trigger of a
triggerer) and names what the task waited for when ``execution_timeout`` strikes mid-call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowTaskTimeout

__all__ = ["run_blocking"]

T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T], *, waiting_for: Callable[[], str]) -> T:
    """Run ``coro`` to completion on a fresh event loop and return its result (or raise its error).

    ``waiting_for()`` names the remote side (e.g. ``Databricks at https://adb-1...``) for the
    message of an ``execution_timeout``, which fires as an exception wherever the main thread is,
    usually deep in the loop. Raises RuntimeError inside a running loop: await ``coro`` there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()  # never awaited: close it, so it is not reported as such
        raise RuntimeError("run_blocking was called from a running event loop; await the call there instead")
    try:
        return asyncio.run(coro)
    except AirflowTaskTimeout as exc:
        raise AirflowTaskTimeout(f"execution_timeout reached while waiting for {waiting_for()}") from exc

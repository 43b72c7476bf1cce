"""The two time seams every waiting part of the library takes: a monotonic clock and an async sleep.

Production code passes nothing and gets ``time.monotonic`` and ``asyncio.sleep``; a test passes a fake
pair that advances only when told, so budgets and backoffs are checked at any value without waiting.
Kept outside both the client and the resume machinery so that neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["Clock", "Sleep"]

Clock = Callable[[], float]
"""Monotonic seconds; ``time.monotonic`` unless a test injects a fake."""
Sleep = Callable[[float], Awaitable[None]]
"""Awaitable sleep in seconds; ``asyncio.sleep`` unless a test injects a fake."""

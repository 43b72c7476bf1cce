"""An async token bucket that paces every request one process sends to a workspace."""

from __future__ import annotations

import asyncio
import time

from resumable_triggers._clock import Clock, Sleep

__all__ = ["Clock", "RequestBudget", "Sleep"]


class RequestBudget:
    """Allows ``requests_per_second`` on average and up to ``burst`` at once, first come first served.

    Implemented as a virtual-scheduling token bucket (GCRA): each ``acquire`` reserves the next free
    slot synchronously, then sleeps until it. Reserving before awaiting makes callers FIFO without a
    lock or a queue, so 5,000 pollers waking together cost 5,000 sleeps, not a thundering herd. A
    caller cancelled while waiting forfeits its slot, which only ever makes the budget stricter.
    In any window of ``w`` seconds at most ``burst + w * requests_per_second`` slots are granted.
    """

    def __init__(
        self,
        *,
        requests_per_second: float,
        burst: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if requests_per_second <= 0 or burst < 1:
            raise ValueError(
                f"RequestBudget needs requests_per_second > 0 and burst >= 1, "
                f"got {requests_per_second!r} and {burst!r}"
            )
        self.requests_per_second = requests_per_second
        self.burst = burst
        self._interval = 1.0 / requests_per_second
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        # Theoretical arrival time of the next request; in the past when the bucket is full.
        self._next_at = clock()

    def _reserve(self) -> float:
        now = self._clock()
        slot = max(self._next_at, now)
        self._next_at = slot + self._interval
        return max(0.0, slot - self._tolerance - now)

    async def acquire(self) -> None:
        """Wait until this caller may send one request."""
        wait = self._reserve()
        if wait > 0:
            await self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` (the workspace said Retry-After), then resume at the normal rate.

        One caller's 429 thereby slows every caller, instead of each discovering the limit itself.
        """
        resume_at = self._clock() + seconds + self._tolerance
        self._next_at = max(self._next_at, resume_at)

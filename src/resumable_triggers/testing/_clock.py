"""Clocks: the emulator reads time through a zero-argument callable returning epoch-like seconds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

Clock = Callable[[], float]


class ManualClock:
    """A clock that only moves when told to, so lifecycle tests need no sleeping.

    ``start`` is in epoch seconds (default: a fixed instant in 2025, so run timestamps are plausible
    and tests are deterministic). Thread-safe: a test thread may advance it while the emulator's
    server thread reads it.
    """

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must be >= 0); returns the new time."""
        if seconds < 0:
            raise ValueError(f"ManualClock cannot go backwards (advance({seconds!r})).")
        with self._lock:
            self._now += seconds
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self():.3f})"


class VirtualTime:
    """A monotonic clock and an async sleep that advance together, for code that takes both seams.

    ``sleep(s)`` moves the clock forward by ``s`` at once (and yields to the loop, as a real sleep
    does), so a 30-minute error budget or a backoff schedule is exercised in microseconds::

        time = VirtualTime()
        client = DatabricksClient(url, headers, clock=time.monotonic, sleep=time.sleep)
        trigger = MyTrigger(external_id=1, clock=time.monotonic, sleep=time.sleep)

    ``sleeps`` lists every sleep asked for, in order; ``advance`` moves the clock without a sleep
    (e.g. a slow request). Not thread-safe: it belongs to one event loop.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must be >= 0); returns the new time."""
        if seconds < 0:
            raise ValueError(f"VirtualTime cannot go backwards (advance({seconds!r})).")
        self.now += seconds
        return self.now

    def __repr__(self) -> str:
        return f"VirtualTime({self.now:.3f}, {len(self.sleeps)} sleeps)"

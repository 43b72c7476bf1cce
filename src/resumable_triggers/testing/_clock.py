"""Clocks: the emulator reads time through a zero-argument callable returning epoch-like seconds."""

from __future__ import annotations

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

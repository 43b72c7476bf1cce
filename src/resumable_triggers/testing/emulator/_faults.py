"""Injected faults, rate limits, and what the emulator counts and logs.

Fault kinds, applied to the next ``count`` requests of an endpoint (``"*"`` or None: any endpoint):

- ``http_error``: answer ``status`` (default 503) without applying the request; ``Retry-After`` when
  ``retry_after_seconds`` is given;
- ``latency``: wait ``delay_seconds``, then serve normally;
- ``drop``: close the connection without applying the request or answering;
- ``lose_response``: apply the request, then close the connection without answering, the case that
  makes a client resubmit a run that was in fact created;
- ``hold``: apply the request, then keep the answer until ``release_held()`` or 60 s.

Rate limits are token buckets on real monotonic time (not the emulator's clock: a frozen
``ManualClock`` must not freeze the limiter).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

FAULT_KINDS = frozenset({"http_error", "latency", "drop", "lose_response", "hold"})
ANY_ENDPOINT = "*"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    status: int = 503
    retry_after_seconds: int | None = None
    delay_seconds: float = 0.0


@dataclass(slots=True)
class _Plan:
    fault: Fault
    remaining: int


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API request as the emulator saw it. ``time`` is on the emulator's clock."""

    method: str
    endpoint: str
    status: int | None  # None: the connection was closed without an answer
    time: float
    run_id: int | None = None
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Counters:
    """Totals since start or ``reset()``. ``runs_submitted`` counts runs actually created."""

    runs_submitted: int = 0
    requests_by_endpoint: Mapping[str, int] = field(default_factory=dict)
    responses_by_status: Mapping[int, int] = field(default_factory=dict)
    throttled: int = 0


def make_fault(
    kind: str, *, status: int = 503, retry_after_seconds: float | None = None, delay_seconds: float = 0.0
) -> Fault:
    """Validate and build a fault; raises ValueError naming the bad argument."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {sorted(FAULT_KINDS)}, not {kind!r}.")
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be an HTTP error status (400..599), not {status!r}.")
    if retry_after_seconds is not None and (
        not isinstance(retry_after_seconds, int | float) or not 0 <= retry_after_seconds < 86_400
    ):
        raise ValueError(
            f"retry_after_seconds must be a number of seconds >= 0, not {retry_after_seconds!r}."
        )
    if not isinstance(delay_seconds, int | float) or not 0 <= delay_seconds <= 3600:
        raise ValueError(f"delay_seconds must be between 0 and 3600, not {delay_seconds!r}.")
    retry_after = None if retry_after_seconds is None else math.ceil(retry_after_seconds)
    return Fault(kind, status, retry_after, float(delay_seconds))


class FaultBook:
    """Pending faults per endpoint, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._plans: dict[str, list[_Plan]] = {}

    def add(self, endpoint: str | None, fault: Fault, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an integer >= 1, not {count!r}.")
        self._plans.setdefault(endpoint or ANY_ENDPOINT, []).append(_Plan(fault, count))

    def take(self, endpoint: str) -> Fault | None:
        if not self._plans:  # the common case, kept cheap for throughput
            return None
        for key in (endpoint, ANY_ENDPOINT):
            plans = self._plans.get(key)
            if plans:
                plan = plans[0]
                plan.remaining -= 1
                if plan.remaining == 0:
                    plans.pop(0)
                    if not plans:
                        del self._plans[key]
                return plan.fault
        return None

    def clear(self) -> None:
        self._plans.clear()


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimits:
    """Token buckets per endpoint, plus one (key ``"*"``) shared by every endpoint."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def set(self, endpoint: str | None, requests_per_second: float | None, burst: float | None) -> None:
        key = endpoint or ANY_ENDPOINT
        if not requests_per_second:
            self._buckets.pop(key, None)
            return
        if not isinstance(requests_per_second, int | float) or requests_per_second < 0:
            raise ValueError(f"requests_per_second must be a number > 0, not {requests_per_second!r}.")
        burst = requests_per_second if burst is None else burst
        if not isinstance(burst, int | float) or burst < 1:
            raise ValueError(f"burst must be a number >= 1, not {burst!r}.")
        self._buckets[key] = TokenBucket(float(requests_per_second), float(burst))

    def wait_seconds(self, endpoint: str) -> float:
        """0.0 when the request may go ahead, else how long the client should wait."""
        if not self._buckets:
            return 0.0
        wait = 0.0
        for key in (endpoint, ANY_ENDPOINT):
            bucket = self._buckets.get(key)
            if bucket is not None:
                wait = max(wait, bucket.take())
        return wait

    def clear(self) -> None:
        self._buckets.clear()

"""Client settings: plain numbers with units in their names, validated at construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["ClientSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """How a client talks to one workspace. All fields are plain numbers so triggers can serialise them.

    requests_per_second, burst:
        The request budget shared by every caller of one workspace in the process (per event loop).
        The default (10/s, burst 20) is deliberately below the ~15/s the Go SDK uses, so a triggerer
        restarting with thousands of triggers ramps up instead of flooding the workspace. Raising it
        risks 429s and, reportedly, temporary IP blocks.
    max_connections:
        Upper bound of open TCP connections in the shared session's connector.
    connect_timeout_seconds, request_timeout_seconds:
        Per attempt: establishing the connection, and the whole request including reading the body.
    retry_budget_seconds:
        Total time one call may spend retrying (waits included) before RetriesExhausted. Databricks
        advises retrying 5xx for up to 10 minutes; the default is 5.
    connect_budget_seconds:
        How long one call may go without a single HTTP answer (connection refused, DNS failure, a
        host that accepts and never replies, credentials that cannot be fetched) before
        RetriesExhausted naming the host: a workspace that cannot be reached fails a call in about
        this long (default 30 s), plus at most one ``connect_timeout_seconds``. Also bounds
        databricks-sdk's host discovery when a connection's ``Config`` is built. Once the workspace
        answered, ``retry_budget_seconds`` applies.
    backoff_initial_seconds, backoff_max_seconds, jitter_seconds:
        Exponential backoff for 5xx and transport errors: ``min(max, initial * 2**(n-1))`` plus up to
        ``jitter_seconds`` of random jitter (also added to Retry-After waits, so clients woken by the
        same 429 do not come back in lockstep).
    verify_tls:
        Verify the workspace's TLS certificate. Turning it off exposes the token to anyone on the path.
    """

    requests_per_second: float = 10.0
    burst: int = 20
    max_connections: int = 32
    connect_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 60.0
    retry_budget_seconds: float = 300.0
    connect_budget_seconds: float = 30.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    jitter_seconds: float = 1.0
    verify_tls: bool = True

    def __post_init__(self) -> None:
        positive = (
            "requests_per_second",
            "connect_timeout_seconds",
            "request_timeout_seconds",
            "connect_budget_seconds",
            "backoff_initial_seconds",
            "backoff_max_seconds",
        )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "verify_tls":
                if not isinstance(value, bool):
                    raise TypeError(f"ClientSettings.verify_tls must be a bool, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise TypeError(f"ClientSettings.{f.name} must be a finite number, got {value!r}")
            if f.name in positive and value <= 0:
                raise ValueError(f"ClientSettings.{f.name} must be > 0, got {value!r}")
            if value < 0:
                raise ValueError(f"ClientSettings.{f.name} must be >= 0, got {value!r}")
        for name in ("burst", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ClientSettings.{name} must be a whole number >= 1, got {value!r}")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError(
                f"ClientSettings.backoff_max_seconds ({self.backoff_max_seconds}) must be >= "
                f"backoff_initial_seconds ({self.backoff_initial_seconds})"
            )

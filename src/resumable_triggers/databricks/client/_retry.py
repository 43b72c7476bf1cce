"""The retry policy, as data: which failures are retried, and how long to wait before the next try.

=================================  =========================  ===============================
failure                            idempotent request         POST without idempotency token
=================================  =========================  ===============================
429 Too Many Requests              Retry-After (+ jitter)     Retry-After (+ jitter) [1]
503 Service Unavailable            Retry-After or backoff     not retried [2]
500, 502, 504                      exponential backoff        not retried [2]
connection refused / DNS failure   exponential backoff        exponential backoff [1]
transient credentials failure      exponential backoff        exponential backoff [1]
timeout, reset, dropped response   exponential backoff        not retried [2]
TLS verification failure           not retried                not retried
anything else (4xx...)             not retried                not retried
=================================  =========================  ===============================

[1] The workspace never acted on the request (rate limiter rejected it, no connection existed, or
    no auth headers to send it with), so repeating it cannot launch a second run.
[2] The workspace may have launched the run and the answer got lost: repeating it could launch a
    duplicate. Send an idempotency token to make these retryable.

Idempotent requests are GETs, ``runs/cancel``, and submit/run-now carrying an idempotency token.
Everything is bounded by ``ClientSettings.retry_budget_seconds``, waits included.
"""

from __future__ import annotations

import email.utils
import random
from datetime import datetime, timezone

from resumable_triggers.databricks.client._errors import (
    ApiError,
    CredentialsError,
    DatabricksError,
    TlsVerificationError,
    TransportError,
)
from resumable_triggers.databricks.client._settings import ClientSettings

__all__ = ["parse_retry_after", "retry_delay"]

_BACKOFF_STATUSES = frozenset({500, 502, 503, 504})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent or garbled."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a wait


def _backoff(attempt: int, settings: ClientSettings) -> float:
    # Cap the exponent too: 2 ** 2000 overflows a float long before any budget runs out.
    return min(settings.backoff_max_seconds, settings.backoff_initial_seconds * 2 ** min(attempt - 1, 60))


def retry_delay(
    error: DatabricksError,
    *,
    attempt: int,
    idempotent: bool,
    settings: ClientSettings,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before retrying after ``attempt`` (1-based) failed with ``error``; None: give up."""
    jitter = rng.uniform(0.0, settings.jitter_seconds)
    if isinstance(error, ApiError):
        if error.status == 429 or (error.status == 503 and idempotent):
            if error.retry_after_seconds is not None:
                return error.retry_after_seconds + jitter
            return _backoff(attempt, settings) + jitter
        if error.status in _BACKOFF_STATUSES and idempotent:
            return _backoff(attempt, settings) + jitter
        return None
    if isinstance(error, TlsVerificationError):
        return None
    if isinstance(error, TransportError) and (idempotent or not error.request_sent):
        return _backoff(attempt, settings) + jitter
    if isinstance(error, CredentialsError) and error.transient:
        return _backoff(attempt, settings) + jitter
    return None

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
Everything is bounded by ``ClientSettings.retry_budget_seconds``, waits included, and a call that
never got an HTTP answer at all by ``ClientSettings.connect_budget_seconds``.

The table is one predicate, ``is_transient`` ("may trying again later succeed?"), used by the
client for each request and by callers that wait errors out over a longer horizon (the trigger's
watch): 401/403 after a re-read of the credentials, 400s, TLS failures and configuration errors are
permanent and reported at once; a ``RetriesExhausted`` is transient, since only the budget ran out.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
from datetime import datetime, timezone

from resumable_triggers.databricks.client._errors import (
    ApiError,
    CredentialsError,
    DatabricksError,
    RetriesExhausted,
    TlsVerificationError,
    TransportError,
)
from resumable_triggers.databricks.client._settings import ClientSettings

__all__ = ["is_transient", "parse_retry_after", "retry_delay"]

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


def is_transient(error: BaseException, *, idempotent: bool = True) -> bool:
    """True when trying again later may succeed; False when only a human can fix the cause.

    ``idempotent``: whether the failed request may be repeated (see the table); reads are, so a
    caller asking about a watch leaves the default. Takes any exception so that it can serve as a
    retry library's ``on=`` predicate; raw ``OSError`` and timeouts (from outside the client) count
    as network trouble.
    """
    if isinstance(error, RetriesExhausted):
        return True
    if isinstance(error, ApiError):
        return error.status == 429 or (idempotent and error.status in _BACKOFF_STATUSES)
    if isinstance(error, TlsVerificationError):
        return False
    if isinstance(error, TransportError):
        return idempotent or not error.request_sent
    if isinstance(error, CredentialsError):
        return error.transient
    if isinstance(error, DatabricksError):
        return False
    return isinstance(error, OSError | asyncio.TimeoutError)


def retry_delay(
    error: DatabricksError,
    *,
    attempt: int,
    idempotent: bool,
    settings: ClientSettings,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before retrying after ``attempt`` (1-based) failed with ``error``; None: give up."""
    if not is_transient(error, idempotent=idempotent):
        return None
    jitter = rng.uniform(0.0, settings.jitter_seconds)
    if isinstance(error, ApiError) and error.status in (429, 503) and error.retry_after_seconds is not None:
        return error.retry_after_seconds + jitter
    return _backoff(attempt, settings) + jitter

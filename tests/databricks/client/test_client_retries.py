"""Failures the client survives (and the ones it must not paper over), against the emulator.

Waits go through an injected fake clock and sleep, so the tests assert the exact waits the client
chose without spending them; the emulator's request log shows what reached the workspace.
"""

from __future__ import annotations

import dataclasses
import random
import socket
from typing import Any

import pytest
from client_testkit import RETRYING, SPEC, create_job

from resumable_triggers.databricks.client import (
    ApiError,
    AuthError,
    CredentialsError,
    DatabricksClient,
    DatabricksError,
    RetriesExhausted,
    SdkHeaderProvider,
    TlsVerificationError,
    TransportError,
    is_transient,
)
from resumable_triggers.databricks.client._retry import retry_delay
from resumable_triggers.testing import Emulator, VirtualTime


def client_for(url: str, headers: SdkHeaderProvider, fake: VirtualTime, **overrides: Any) -> DatabricksClient:
    """A client whose waits are recorded on ``fake`` instead of spent."""
    settings = dataclasses.replace(RETRYING, **overrides)
    return DatabricksClient(url, headers, settings=settings, clock=fake.monotonic, sleep=fake.sleep)


@pytest.mark.asyncio
async def test_429_storm_is_waited_out_honouring_retry_after(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """Three 429s with Retry-After: 7 cost three waits of 7 s (+ at most 0.5 s jitter), then success."""
    async with client_for(emulator_url, pat, fake_time) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        emulator.inject_fault(
            endpoint="runs/get", kind="http_error", status=429, retry_after_seconds=7, count=3
        )
        run = await client.get_run(run_id)

    assert run_id == run.run_id
    waits = [wait for wait in fake_time.sleeps if wait > 0]
    assert 3 == len(waits)
    assert all(7 <= wait <= 7.5 for wait in waits), waits
    assert 4 == emulator.counters().requests_by_endpoint["runs/get"]


@pytest.mark.asyncio
async def test_429_on_a_submit_without_token_is_retried_because_it_was_never_applied(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """The rate limiter rejects before acting, so even a token-less submit may wait and repeat."""
    emulator.inject_fault(
        endpoint="runs/submit", kind="http_error", status=429, retry_after_seconds=2, count=1
    )
    async with client_for(emulator_url, pat, fake_time) as client:
        await client.submit_run(SPEC, idempotency_token=None)

    assert 1 == emulator.counters().runs_submitted


@pytest.mark.asyncio
async def test_5xx_is_retried_with_exponential_backoff_then_succeeds(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """500, 502, 504 back off 1 s, 2 s, 4 s (+ jitter) and the fourth attempt succeeds."""
    async with client_for(emulator_url, pat, fake_time) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        for status in (500, 502, 504):
            emulator.inject_fault(endpoint="runs/get", kind="http_error", status=status, count=1)
        await client.get_run(run_id)

    waits = [wait for wait in fake_time.sleeps if wait > 0]
    assert [1, 2, 4] == [int(wait) for wait in waits]
    assert all(wait - int(wait) <= 0.5 for wait in waits)


@pytest.mark.asyncio
async def test_persistent_5xx_exhausts_the_retry_budget_with_a_typed_error(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """A workspace answering 503 for ever yields RetriesExhausted carrying attempts, time and the 503."""
    async with client_for(emulator_url, pat, fake_time) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        emulator.inject_fault(endpoint="runs/get", kind="http_error", status=503, count=1000)
        with pytest.raises(RetriesExhausted) as excinfo:
            await client.get_run(run_id)

    error = excinfo.value
    assert isinstance(error.last_error, ApiError)
    assert 503 == error.last_error.status
    assert error.__cause__ is error.last_error
    assert error.elapsed_seconds <= RETRYING.retry_budget_seconds
    assert error.attempts == emulator.counters().requests_by_endpoint["runs/get"]
    assert sum(fake_time.sleeps) <= RETRYING.retry_budget_seconds


@pytest.mark.asyncio
async def test_dropped_connections_are_retried_then_succeed(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """Two connections closed without an answer are survived; the third GET succeeds.

    aiohttp itself repeats a GET once, at once, when a reused keep-alive connection turns out closed;
    so one or two of the drops reach the client's backoff, never more.
    """
    async with client_for(emulator_url, pat, fake_time) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        emulator.inject_fault(endpoint="runs/get", kind="drop", count=2)
        run = await client.get_run(run_id)

    assert run_id == run.run_id
    assert 3 == emulator.counters().requests_by_endpoint["runs/get"]
    assert 1 <= len([wait for wait in fake_time.sleeps if wait > 0]) <= 2


@pytest.mark.asyncio
async def test_dropped_connections_for_ever_end_in_retries_exhausted_from_a_transport_error(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """When every attempt is dropped, the last error is a TransportError and the budget bounds it."""
    async with client_for(emulator_url, pat, fake_time, retry_budget_seconds=20) as client:
        emulator.inject_fault(endpoint="runs/get", kind="drop", count=1000)
        with pytest.raises(RetriesExhausted) as excinfo:
            await client.get_run(1)

    assert isinstance(excinfo.value.last_error, TransportError)
    assert excinfo.value.last_error.request_sent
    assert sum(fake_time.sleeps) <= 20


@pytest.mark.asyncio
async def test_lost_submit_response_with_token_is_retried_and_yields_one_run(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """The workspace created the run but the answer was lost: the token makes the retry return it."""
    emulator.inject_fault(endpoint="runs/submit", kind="lose_response", count=1)
    async with client_for(emulator_url, pat, fake_time) as client:
        run_id = await client.submit_run(SPEC, idempotency_token="task-1-try-1")
        run = await client.get_run(run_id)

    counters = emulator.counters()
    assert 1 == counters.runs_submitted
    assert 2 == counters.requests_by_endpoint["runs/submit"]
    assert run_id == run.run_id


@pytest.mark.asyncio
async def test_lost_submit_response_without_token_is_not_retried(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """Without a token a retry could launch a duplicate: the client raises TransportError instead."""
    emulator.inject_fault(endpoint="runs/submit", kind="lose_response", count=1)
    async with client_for(emulator_url, pat, fake_time) as client:
        with pytest.raises(TransportError) as excinfo:
            await client.submit_run(SPEC, idempotency_token=None)

    counters = emulator.counters()
    assert 1 == counters.runs_submitted
    assert 1 == counters.requests_by_endpoint["runs/submit"]
    assert excinfo.value.request_sent
    assert [] == [wait for wait in fake_time.sleeps if wait > 0]


@pytest.mark.asyncio
async def test_503_on_a_submit_without_token_is_not_retried(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """A 503 does not prove the run was not created, so a token-less submit is not repeated."""
    emulator.inject_fault(endpoint="runs/submit", kind="http_error", status=503, count=1)
    async with client_for(emulator_url, pat, fake_time) as client:
        with pytest.raises(ApiError) as excinfo:
            await client.submit_run(SPEC, idempotency_token=None)

    assert 503 == excinfo.value.status
    assert 1 == emulator.counters().requests_by_endpoint["runs/submit"]


@pytest.mark.asyncio
async def test_lost_and_unavailable_run_now_with_token_is_retried_into_one_run(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """run-now with an idempotency token is as safe to repeat as a GET: one run comes of it."""
    job_id = await create_job(
        emulator_url,
        emulator.token,
        {"name": "nightly", "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]},
    )
    emulator.inject_fault(endpoint="run-now", kind="lose_response", count=1)
    emulator.inject_fault(endpoint="run-now", kind="http_error", status=503, count=1)
    async with client_for(emulator_url, pat, fake_time) as client:
        run_id = await client.run_now(job_id, idempotency_token="nightly-2025-01-01")
        run = await client.get_run(run_id)

    assert job_id == run.job_id
    assert 1 == emulator.counters().runs_submitted


@pytest.mark.asyncio
async def test_slow_answer_times_out_and_is_retried(
    emulator: Emulator, emulator_url: str, pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """An attempt slower than request_timeout_seconds is abandoned and retried."""
    async with client_for(emulator_url, pat, fake_time, request_timeout_seconds=0.2) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        emulator.inject_fault(endpoint="runs/get", kind="latency", delay_seconds=1.0, count=1)
        run = await client.get_run(run_id)

    assert run_id == run.run_id
    assert 1 == len([wait for wait in fake_time.sleeps if wait > 0])


@pytest.mark.asyncio
async def test_refused_connection_is_a_transport_error_marked_not_sent(
    pat: SdkHeaderProvider, fake_time: VirtualTime
) -> None:
    """Nobody listening: retried with backoff, then RetriesExhausted from a never-sent TransportError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client_for(f"http://127.0.0.1:{port}", pat, fake_time, retry_budget_seconds=10) as client:
        with pytest.raises(RetriesExhausted) as excinfo:
            await client.cancel_run(1)

    assert isinstance(excinfo.value.last_error, TransportError)
    assert not excinfo.value.last_error.request_sent


def _api(status: int) -> ApiError:
    return ApiError(status=status, error_code=None, message="m", endpoint="jobs/runs/get")


@pytest.mark.parametrize(
    ("error", "idempotent", "transient"),
    [
        (_api(429), False, True),
        (_api(503), True, True),
        (_api(503), False, False),
        (_api(500), True, True),
        (_api(400), True, False),
        (AuthError(status=403, error_code="PERMISSION_DENIED", message="m", endpoint="e"), True, False),
        (TransportError("t", method="GET", endpoint="e", request_sent=True), True, True),
        (TransportError("t", method="POST", endpoint="e", request_sent=True), False, False),
        (TransportError("t", method="POST", endpoint="e", request_sent=False), False, True),
        (TlsVerificationError("t", method="GET", endpoint="e", request_sent=False), True, False),
        (CredentialsError("c", identity="i", transient=True), True, True),
        (CredentialsError("c", identity="i", transient=False), True, False),
        (RetriesExhausted(endpoint="e", attempts=3, elapsed_seconds=1.0, last_error=_api(503)), True, True),
        (ConnectionResetError(), True, True),
        (ValueError("not ours"), True, False),
    ],
)
def test_one_predicate_classifies_every_failure_as_the_retry_table_says(
    error: BaseException, idempotent: bool, transient: bool
) -> None:
    """``is_transient`` is the retry table: the client retries exactly what it calls transient, and the
    trigger waits out exactly that; 403s, 400s and TLS failures are permanent."""
    assert transient == is_transient(error, idempotent=idempotent)
    if isinstance(error, DatabricksError):
        delay = retry_delay(error, attempt=1, idempotent=idempotent, settings=RETRYING, rng=random.Random(0))
        assert transient == (delay is not None)

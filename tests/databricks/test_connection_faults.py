"""The connection's credentials under production faults: a rotated token, an unreachable workspace.

Real HTTP against the emulator (rotation) or against a loopback listener that accepts connections and
never answers (unreachability); budgets are shrunk through settings, never asserted on a wall clock.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator

import pytest

from resumable_triggers.databricks._connection import (
    ConnectionFields,
    ConnectionHeaderProvider,
    workspace_from_fields,
)
from resumable_triggers.databricks.client import (
    AuthError,
    ClientSettings,
    CredentialsError,
    DatabricksClient,
    RetriesExhausted,
    SdkHeaderProvider,
)
from resumable_triggers.testing import Emulator, EmulatorFactory

pytestmark = pytest.mark.timeout(60)


class AirflowConnections:
    """What the triggerer's connection lookup returns: edited by the test, counted on every read."""

    def __init__(self, url: str, token: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.fields = ConnectionFields(
            conn_id="rotating", host=host, schema="http", port=int(port), password=token
        )
        self.reads = 0

    async def read(self) -> ConnectionFields:
        self.reads += 1
        await asyncio.sleep(0)  # a supervisor round trip: other callers get to run meanwhile
        return self.fields

    def rotate(self, token: str) -> None:
        self.fields = ConnectionFields(**{**_as_dict(self.fields), "password": token})


def _as_dict(fields: ConnectionFields) -> dict[str, object]:
    return {name: getattr(fields, name) for name in ConnectionFields.__dataclass_fields__}


@pytest.fixture
def served(databricks_emulator_factory: EmulatorFactory) -> tuple[Emulator, str]:
    handle = databricks_emulator_factory()
    return handle.emulator, handle.url


@pytest.mark.asyncio
async def test_token_rotated_in_the_connection_and_revoked_is_picked_up_by_every_caller(
    served: tuple[Emulator, str],
) -> None:
    """The connection's token is rotated and the old one revoked while a client is in use: the next
    calls get 403 once, re-read the connection once (not once per caller), and succeed."""
    emulator, url = served
    connections = AirflowConnections(url, emulator.token)
    workspace = workspace_from_fields(connections.fields, reread=connections.read)
    async with DatabricksClient(workspace.host, workspace.headers) as client:
        await client.list_runs()
        emulator.add_token("dapi-rotated")
        connections.rotate("dapi-rotated")
        emulator.revoke_token(emulator.token)
        pages = await asyncio.gather(*(client.list_runs() for _ in range(20)))
    rejected = emulator.counters().responses_by_status.get(403, 0)
    assert (20, 1, True) == (len(pages), connections.reads, rejected >= 1)


@pytest.mark.asyncio
async def test_revoked_token_without_rotation_is_a_permanent_auth_error(served: tuple[Emulator, str]) -> None:
    """Revoked but not rotated: after one re-read the call fails with AuthError (no retrying)."""
    emulator, url = served
    connections = AirflowConnections(url, emulator.token)
    workspace = workspace_from_fields(connections.fields, reread=connections.read)
    emulator.revoke_token(emulator.token)
    async with DatabricksClient(workspace.host, workspace.headers) as client:
        with pytest.raises(AuthError) as rejected:
            await client.list_runs()
    assert (403, 1) == (rejected.value.status, connections.reads)


@pytest.mark.asyncio
async def test_connection_moved_to_another_host_is_a_permanent_error_naming_both(
    served: tuple[Emulator, str],
) -> None:
    """A re-read that finds another host does not send the new token to the old one."""
    emulator, url = served
    connections = AirflowConnections(url, emulator.token)
    headers = ConnectionHeaderProvider(connections.fields, reread=connections.read)
    served_headers = await headers.headers()
    connections.fields = ConnectionFields(conn_id="rotating", host="other.cloud.databricks.com", password="x")
    headers.invalidate(served_headers)
    with pytest.raises(CredentialsError, match=re.escape("other.cloud.databricks.com")):
        await headers.headers()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A loopback port that accepts connections (kernel backlog) and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_workspace_that_accepts_and_never_answers_fails_within_the_connect_budget_naming_the_host(
    silent_listener: str,
) -> None:
    """No HTTP answer at all: the call gives up after connect_budget_seconds (not the 300 s retry
    budget), with RetriesExhausted saying which budget ran out and which host did not answer."""
    settings = ClientSettings(
        connect_budget_seconds=0.6, connect_timeout_seconds=0.2, backoff_initial_seconds=0.1
    )
    async with DatabricksClient(silent_listener, _StaticHeaders(), settings=settings) as client:
        with pytest.raises(RetriesExhausted) as exhausted:
            await client.get_run(1)
    assert ("connect_budget_seconds", True) == (
        exhausted.value.budget,
        silent_listener.removeprefix("http://") in str(exhausted.value),
    )


class _StaticHeaders:
    """A PAT's headers, without databricks-sdk: this test is about the requests alone."""

    identity = "static"

    async def headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer t"}

    def invalidate(self, rejected: object = None) -> None:
        pass


def test_a_blocking_sdk_call_never_holds_up_asyncio_run() -> None:
    """The SDK thread is not the loop's executor: when a caller stops waiting (an execution timeout,
    a user's kill) ``asyncio.run`` returns at once instead of joining a thread stuck in the SDK.
    (With ``asyncio.to_thread`` this test hangs until its own timeout.)"""
    release = threading.Event()

    def stuck_config() -> object:
        release.wait(120)
        raise ValueError("released")

    provider = SdkHeaderProvider(stuck_config, identity="stuck")  # type: ignore[arg-type]

    async def give_up_soon() -> None:
        await asyncio.wait_for(provider.headers(), 0.2)

    try:
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(give_up_soon())
    finally:
        release.set()

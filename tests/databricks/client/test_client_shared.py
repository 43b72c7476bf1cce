"""shared_client: one session per loop per identity, one budget per workspace, clean closing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from client_testkit import FakeConfig, eventually

from resumable_triggers.databricks.client import ClientSettings, SdkHeaderProvider, shared_client


def provider(identity: str) -> SdkHeaderProvider:
    return SdkHeaderProvider(lambda: FakeConfig({"Authorization": "Bearer t"}), identity=identity)  # type: ignore[arg-type,return-value]


@pytest.mark.asyncio
async def test_leases_on_one_loop_share_one_client_and_one_session() -> None:
    """Many concurrent leases (all held at once) for the same workspace identity get the very same
    client and session."""
    seen: list[Any] = []
    all_held = asyncio.Barrier(50)

    async def trigger() -> None:
        async with shared_client("https://ws.example", provider("conn:a")) as client:
            seen.append((client, client.session))
            await all_held.wait()

    await asyncio.gather(*(trigger() for _ in range(50)))

    assert 1 == len({id(client) for client, _ in seen})
    assert 1 == len({id(session) for _, session in seen})


@pytest.mark.asyncio
async def test_the_shared_session_has_bounded_connections_and_timeouts() -> None:
    """The connector limit and timeouts come from ClientSettings, never aiohttp's defaults."""
    settings = ClientSettings(max_connections=7, connect_timeout_seconds=3, request_timeout_seconds=9)
    async with shared_client("https://ws.example", provider("conn:limits"), settings=settings) as client:
        session = client.session
        assert session is not None
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert 7 == session.connector.limit
        assert (9, 3) == (session.timeout.total, session.timeout.sock_connect)


@pytest.mark.asyncio
async def test_identities_get_their_own_session_but_share_the_workspace_budget() -> None:
    """Databricks rate-limits a workspace, not a credential: two identities share one budget."""
    async with (
        shared_client("https://ws.example", provider("conn:a")) as a,
        shared_client("https://ws.example/", provider("conn:b")) as b,
        shared_client("https://other.example", provider("conn:a")) as c,
    ):
        assert a.session is not b.session
        assert a.budget is b.budget
        assert a.budget is not c.budget


@pytest.mark.asyncio
async def test_session_closes_after_the_idle_grace_and_a_new_lease_opens_a_new_one() -> None:
    """Released for longer than idle_grace_seconds (here none), the session is closed; the next
    lease opens a new one."""
    async with shared_client("https://ws.example", provider("conn:idle"), idle_grace_seconds=0) as first:
        session = first.session
    assert session is not None
    await eventually(lambda: session.closed)
    async with shared_client("https://ws.example", provider("conn:idle")) as second:
        assert second.session is not None
        assert not second.session.closed


@pytest.mark.asyncio
async def test_a_lease_within_the_idle_grace_reuses_the_open_session() -> None:
    """A trigger finishing just before another starts does not cost a new session."""
    async with shared_client("https://ws.example", provider("conn:reuse"), idle_grace_seconds=30) as first:
        session = first.session
    async with shared_client("https://ws.example", provider("conn:reuse")) as second:
        assert session is second.session
        assert session is not None
        assert not session.closed


def test_sessions_still_leased_or_idle_are_closed_when_the_event_loop_shuts_down() -> None:
    """asyncio.run's shutdown closes every shared session, leased or idle; nothing leaks."""
    sessions: list[aiohttp.ClientSession] = []

    async def triggerer() -> None:
        async with shared_client("https://ws.example", provider("conn:idle-at-exit")) as idle:
            sessions.append(idle.session)  # type: ignore[arg-type]

        leased = asyncio.Event()

        async def forever() -> None:
            async with shared_client("https://ws.example", provider("conn:busy-at-exit")) as busy:
                sessions.append(busy.session)  # type: ignore[arg-type]
                leased.set()
                await asyncio.Event().wait()

        asyncio.get_running_loop().create_task(forever())
        await leased.wait()

    asyncio.run(triggerer())

    assert 2 == len(sessions)
    assert all(session.closed for session in sessions)

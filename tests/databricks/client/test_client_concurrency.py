"""Hundreds of pollers on one loop: one session, bounded connections, every poll answered."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import psutil
import pytest

from resumable_triggers.databricks.client import ClientSettings, shared_client
from resumable_triggers.testing import Emulator, EmulatorFactory

TOKEN = "dapi-emulator-token"
POLLERS = 500
POLLS_EACH = 2
# No pacing to wait out: the claims here are about sessions and sockets, not rates.
SETTINGS = ClientSettings(requests_per_second=100_000, burst=1000, max_connections=8)


class StaticTokenHeaders:
    """A header provider with a fixed PAT: a fake for tests about sessions and budgets, not auth.

    databricks-sdk's Config keeps its own keep-alive socket to the workspace (from probing
    /.well-known/databricks-config), which would blur a count of the client's sockets.
    """

    identity = "static:load-test"

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def invalidate(self, rejected: object = None) -> None:
        """A fixed token cannot be refreshed."""


@pytest.fixture
def emulator_and_url(databricks_emulator_factory: EmulatorFactory) -> tuple[Emulator, str]:
    """An emulator in a thread of its own, whose runs last an hour: every poll finds them running."""
    served = databricks_emulator_factory(token=TOKEN, run_seconds=3600.0)
    return served.emulator, served.url


def connections_to(url: str) -> int:
    """Our live sockets to ``url``'s port, as the OS counts them (not what aiohttp was configured with).

    A socket the server already closed lingers in CLOSE_WAIT until aiohttp reaps it while its
    replacement opens; the connector's limit is about live connections, so those don't count."""
    port = urlsplit(url).port
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


@pytest.mark.asyncio
async def test_500_pollers_share_one_session_and_at_most_max_connections_sockets(
    emulator_and_url: tuple[Emulator, str],
) -> None:
    """500 concurrent triggers polling through shared_client use one client, one session and at most
    ``max_connections`` sockets (counted by the OS every 25 requests), and every poll is answered.

    That their requests reach the workspace within the request budget in every one-second window is
    a claim about timing: ``benchmarks/client_timing.py`` measures it (and the bench's restart storm
    at 10,000 triggers); the budget's pacing itself is tested on virtual time in test_client_budget."""
    emulator, url = emulator_and_url
    provider = StaticTokenHeaders()
    async with shared_client(url, provider, settings=SETTINGS) as setup:
        run_ids = [
            await setup.submit_run(
                {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]},
                idempotency_token=f"r{i}",
            )
            for i in range(10)
        ]
    sessions = set()
    before = emulator.counters()
    polls = 0
    connections: list[int] = []

    async def poller(index: int) -> None:
        nonlocal polls
        async with shared_client(url, provider, settings=SETTINGS) as client:
            sessions.add(id(client.session))
            for _ in range(POLLS_EACH):
                run = await client.get_run(run_ids[index % len(run_ids)])
                assert not run.state.is_terminal
                polls += 1
                if polls % 25 == 0:
                    connections.append(connections_to(url))

    await asyncio.gather(*(poller(index) for index in range(POLLERS)))

    after = emulator.counters()
    assert 1 == len(sessions)
    assert 0 < max(connections) <= SETTINGS.max_connections
    assert POLLERS * POLLS_EACH == after.requests_by_endpoint["runs/get"] - before.requests_by_endpoint.get(
        "runs/get", 0
    )

"""Hundreds of pollers on one loop: one session, bounded connections, and a request budget honoured."""

from __future__ import annotations

import asyncio
import bisect
from urllib.parse import urlsplit

import psutil
import pytest

from resumable_triggers.databricks.client import ClientSettings, shared_client
from resumable_triggers.testing import Emulator, EmulatorFactory

TOKEN = "dapi-emulator-token"
POLLERS = 500
POLLS_EACH = 2
SETTINGS = ClientSettings(requests_per_second=150, burst=20, max_connections=8)


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
def realtime_emulator(databricks_emulator_factory: EmulatorFactory) -> tuple[Emulator, str]:
    """An emulator on real time, so its request log shows when requests actually arrived."""
    served = databricks_emulator_factory(token=TOKEN, run_seconds=3600.0)
    return served.emulator, served.url


@pytest.mark.asyncio
async def test_500_pollers_share_one_session_and_never_exceed_the_request_budget(
    realtime_emulator: tuple[Emulator, str],
) -> None:
    """500 concurrent triggers polling through shared_client use one client, one session and at most
    ``max_connections`` sockets (as the OS counts them); their requests arrive at the workspace
    within ``burst + rate * window`` in every one-second window, so a workspace limiter set just
    above the budget never throttles them."""
    emulator, url = realtime_emulator
    provider = StaticTokenHeaders()
    # The workspace allows a bit more than the client budget: network jitter may bunch arrivals.
    emulator.set_rate_limit(
        endpoint=None, requests_per_second=SETTINGS.requests_per_second * 1.2, burst=SETTINGS.burst * 2
    )
    async with shared_client(url, provider, settings=SETTINGS) as setup:
        run_ids = [
            await setup.submit_run({"tasks": [{"task_key": "a"}]}, idempotency_token=f"r{i}")
            for i in range(10)
        ]
    sessions = set()
    before = emulator.counters()
    polling_from = emulator.request_log[-1].time

    async def poller(index: int) -> None:
        async with shared_client(url, provider, settings=SETTINGS) as client:
            sessions.add(id(client.session))
            for _ in range(POLLS_EACH):
                run = await client.get_run(run_ids[index % len(run_ids)])
                assert not run.state.is_terminal

    async def count_connections(stop: asyncio.Event) -> int:
        # What the OS says, not what aiohttp was configured with: our live sockets to the emulator's
        # port. A socket the server already closed lingers in CLOSE_WAIT until aiohttp reaps it while
        # its replacement opens; the connector's limit is about live connections, so those don't count.
        port = urlsplit(url).port
        me, peak = psutil.Process(), 0
        while not stop.is_set():
            open_now = [
                c
                for c in me.net_connections(kind="tcp")
                if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
            ]
            peak = max(peak, len(open_now))
            await asyncio.sleep(0.02)
        return peak

    stop = asyncio.Event()
    sampler = asyncio.create_task(count_connections(stop))
    await asyncio.gather(*(poller(index) for index in range(POLLERS)))
    stop.set()
    peak_connections = await sampler

    after = emulator.counters()
    arrivals = sorted(
        record.time
        for record in emulator.request_log
        if record.endpoint == "runs/get" and record.time > polling_from
    )
    # Arrival times are stamped by the emulator's thread, which runs late (and so bunches arrivals)
    # on a busy machine; 0.25 s of slack covers that, while a client without a budget (1,000
    # requests in about a second) would still exceed it several times over.
    allowed = SETTINGS.burst + SETTINGS.requests_per_second * (1.0 + 0.25)
    busiest = max(bisect.bisect_left(arrivals, start + 1.0) - i for i, start in enumerate(arrivals))
    assert 1 == len(sessions)
    assert 0 < peak_connections <= SETTINGS.max_connections
    assert POLLERS * POLLS_EACH == after.requests_by_endpoint["runs/get"] - before.requests_by_endpoint.get(
        "runs/get", 0
    )
    assert 0 == after.throttled
    assert busiest <= allowed, f"{busiest} requests in one second, budget {allowed}"

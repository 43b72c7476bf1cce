"""The client from synchronous code: the worker's one bridge (``run_blocking``), each call on its own loop."""

from __future__ import annotations

import pytest
from databricks.sdk.config import Config

from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    RunNotFound,
    SdkHeaderProvider,
)
from resumable_triggers.resume._bridge import run_blocking
from resumable_triggers.testing import Emulator

SPEC = {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}
FAST = ClientSettings(requests_per_second=1000, burst=1000)


def remote() -> str:
    return "the emulator"


def test_operator_style_calls_submit_read_cancel_and_reuse_one_sdk_config(
    emulator: Emulator, emulator_url: str
) -> None:
    """Sequential calls from plain synchronous code work, each on its own loop with its own client,
    while one header provider keeps a single SDK Config (no repeated discovery or token fetches)."""
    built: list[Config] = []

    def factory() -> Config:
        built.append(Config(host=emulator_url, token=emulator.token))
        return built[-1]

    provider = SdkHeaderProvider(factory, identity="conn:worker")

    def client() -> DatabricksClient:
        return DatabricksClient(emulator_url, provider, settings=FAST)

    async def submit() -> int:
        async with client() as c:
            return await c.submit_run(SPEC, idempotency_token="op-1")

    async def cancel(run_id: int) -> None:
        async with client() as c:
            await c.cancel_run(run_id)

    run_id = run_blocking(submit(), waiting_for=remote)
    again = run_blocking(submit(), waiting_for=remote)
    run_blocking(cancel(run_id), waiting_for=remote)

    assert run_id == again
    assert 1 == emulator.counters().runs_submitted
    assert 1 == len(built)


def test_typed_errors_cross_the_bridge_unchanged(emulator_url: str, pat: SdkHeaderProvider) -> None:
    """An unknown run raises RunNotFound in the synchronous caller, as it would when awaited."""

    async def read() -> None:
        async with DatabricksClient(emulator_url, pat, settings=FAST) as client:
            await client.get_run(5)

    with pytest.raises(RunNotFound) as excinfo:
        run_blocking(read(), waiting_for=remote)

    assert 5 == excinfo.value.run_id


@pytest.mark.asyncio
async def test_the_bridge_refuses_to_block_a_running_event_loop() -> None:
    """Inside a loop (a trigger) the bridge would stall every other trigger: it raises instead, and
    the coroutine is closed rather than left never awaited."""

    async def unused() -> None:
        raise AssertionError("never run")

    coro = unused()
    with pytest.raises(RuntimeError, match="running event loop"):
        run_blocking(coro, waiting_for=remote)

    assert coro.cr_frame is None  # closed

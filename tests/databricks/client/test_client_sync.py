"""run_sync: the worker side's single bridge onto the async client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from databricks.sdk.config import Config

from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    RunNotFound,
    SdkHeaderProvider,
    run_sync,
)
from resumable_triggers.testing import Emulator

SPEC = {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}
FAST = ClientSettings(requests_per_second=1000, burst=1000)
T = TypeVar("T")


def test_operator_style_calls_submit_read_cancel_and_reuse_one_sdk_config(
    emulator: Emulator, emulator_url: str
) -> None:
    """Sequential run_sync calls from plain synchronous code work, each on its own loop, while one
    header provider keeps a single SDK Config (no repeated discovery or token fetches)."""
    built: list[Config] = []

    def factory() -> Config:
        built.append(Config(host=emulator_url, token=emulator.token))
        return built[-1]

    provider = SdkHeaderProvider(factory, identity="conn:worker")

    def call(fn: Callable[[DatabricksClient], Awaitable[T]]) -> T:
        return run_sync(fn, host=emulator_url, headers=provider, settings=FAST)

    run_id = call(lambda client: client.submit_run(SPEC, idempotency_token="op-1"))
    again = call(lambda client: client.submit_run(SPEC, idempotency_token="op-1"))
    run = call(lambda client: client.get_run(run_id))
    call(lambda client: client.cancel_run(run_id))

    assert run_id == again == run.run_id
    assert 1 == emulator.counters().runs_submitted
    assert 1 == len(built)


def test_typed_errors_cross_the_bridge_unchanged(emulator_url: str, pat: SdkHeaderProvider) -> None:
    """An unknown run raises RunNotFound in the synchronous caller, as it would when awaited."""
    with pytest.raises(RunNotFound) as excinfo:
        run_sync(lambda client: client.get_run(5), host=emulator_url, headers=pat, settings=FAST)

    assert 5 == excinfo.value.run_id


@pytest.mark.asyncio
async def test_run_sync_refuses_to_block_a_running_event_loop(pat: SdkHeaderProvider) -> None:
    """Inside a loop (a trigger) run_sync would stall every other trigger: it raises instead."""

    async def unused(client: DatabricksClient) -> None:
        raise AssertionError("never called")

    with pytest.raises(RuntimeError, match="running event loop"):
        run_sync(unused, host="https://ws.example", headers=pat)

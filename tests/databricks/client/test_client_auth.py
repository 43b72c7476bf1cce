"""Auth through databricks-sdk: refreshes never block the loop, are shared, and are retried once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from client_testkit import FakeConfig, entered, eventually
from databricks.sdk.config import Config

from resumable_triggers.databricks.client import (
    AuthError,
    ClientSettings,
    CredentialsError,
    DatabricksClient,
    SdkHeaderProvider,
)
from resumable_triggers.testing import Emulator, ManualClock, VirtualTime

CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"
FAST = ClientSettings(requests_per_second=1000, burst=1000)
SPEC = {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}


def oauth_provider(url: str) -> SdkHeaderProvider:
    return SdkHeaderProvider(
        lambda: Config(host=url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET), identity="test:oauth"
    )


@pytest.mark.asyncio
async def test_oauth_token_expiring_while_polling_is_refreshed_once_for_every_poller(
    emulator: Emulator, clock: ManualClock, emulator_url: str
) -> None:
    """20 pollers see the OAuth token expire (the workspace rejects it, the SDK still trusts it):
    one refresh from the token endpoint serves all of them, and every poll succeeds.

    That the refresh never stalls the loop is shown with a refresh that blocks until the test lets
    it go (below); how long the loop stalls during a slow real one is measured by
    ``benchmarks/client_timing.py``."""
    provider = oauth_provider(emulator_url)
    async with DatabricksClient(emulator_url, provider, settings=FAST) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        tokens_before = emulator.counters().requests_by_endpoint["oidc/v1/token"]
        # The workspace now judges the token expired; the SDK, on its own clock, still trusts it.
        clock.advance(2 * 3600)
        runs = await asyncio.gather(*(client.get_run(run_id) for _ in range(20)))

    assert {run_id} == {run.run_id for run in runs}
    assert 1 == emulator.counters().requests_by_endpoint["oidc/v1/token"] - tokens_before


@pytest.mark.asyncio
async def test_concurrent_callers_share_one_blocking_refresh() -> None:
    """100 callers needing headers at once cause one Config and one authenticate(), off the loop:
    the loop keeps running (this test with it) while authenticate() blocks, until the test lets it
    return."""
    gate = threading.Event()
    config = FakeConfig({"Authorization": "Bearer t"}, gate=gate)
    built: list[FakeConfig] = []

    def factory() -> Any:
        built.append(config)
        return config

    provider = SdkHeaderProvider(factory, identity="test:fake")
    callers = asyncio.gather(*(provider.headers() for _ in range(100)))
    await entered(config)
    waiting = not callers.done()
    gate.set()
    results = await callers

    assert (True, True) == (waiting, config.opened_in_time)
    assert (1, 1) == (len(built), config.authentications)
    assert [{"Authorization": "Bearer t"}] * 100 == [dict(headers) for headers in results]


@pytest.mark.asyncio
async def test_every_header_the_sdk_returns_is_kept() -> None:
    """Azure service principals add management headers next to Authorization; none are dropped."""
    azure = {"Authorization": "Bearer aad", "X-Databricks-Azure-SP-Management-Token": "mgmt"}
    provider = SdkHeaderProvider(lambda: FakeConfig(azure), identity="test:azure")  # type: ignore[arg-type,return-value]

    assert azure == dict(await provider.headers())


@pytest.mark.asyncio
async def test_cached_headers_are_served_without_calling_the_sdk_again() -> None:
    """Within cache_ttl_seconds, headers come from the cache: no thread hop per request."""
    config = FakeConfig({"Authorization": "Bearer t"})
    provider = SdkHeaderProvider(lambda: config, identity="test:cache")  # type: ignore[arg-type,return-value]
    for _ in range(10):
        await provider.headers()

    assert 1 == config.authentications


@pytest.mark.asyncio
async def test_a_stale_rejection_does_not_discard_fresh_headers() -> None:
    """A 401 for headers that were already replaced must not trigger yet another refresh."""
    configs: list[FakeConfig] = []

    def factory() -> Any:
        configs.append(FakeConfig({"Authorization": f"Bearer t{len(configs)}"}))
        return configs[-1]

    provider = SdkHeaderProvider(factory, identity="test:stale")
    old = await provider.headers()
    provider.invalidate(old)
    new = await provider.headers()
    provider.invalidate(old)  # a late 401 for a request sent with the old token

    assert new is await provider.headers()
    assert 2 == len(configs)


@pytest.mark.asyncio
async def test_rejected_credentials_are_refreshed_once_then_raise_auth_error(
    emulator: Emulator, emulator_url: str
) -> None:
    """A wrong token is re-created once (in case it merely expired), then AuthError: no retry loop."""
    built: list[Config] = []

    def factory() -> Config:
        built.append(Config(host=emulator_url, token="dapi-wrong-token"))
        return built[-1]

    provider = SdkHeaderProvider(factory, identity="test:wrong")
    async with DatabricksClient(emulator_url, provider, settings=FAST) as client:
        with pytest.raises(AuthError) as excinfo:
            await client.get_run(1)

    assert 403 == excinfo.value.status
    assert 2 == len(built)
    assert 2 == emulator.counters().requests_by_endpoint["runs/get"]


@pytest.mark.asyncio
async def test_sdk_configuration_failure_is_a_credentials_error_naming_the_identity(
    emulator_url: str,
) -> None:
    """No credentials at all: the SDK's ValueError surfaces as CredentialsError, chained."""
    provider = SdkHeaderProvider(lambda: Config(host=emulator_url), identity="conn:nothing")
    async with DatabricksClient(emulator_url, provider, settings=FAST) as client:
        with pytest.raises(CredentialsError) as excinfo:
            await client.get_run(1)

    assert "conn:nothing" == excinfo.value.identity
    assert "conn:nothing" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, ValueError)
    assert not excinfo.value.transient  # a misconfiguration: retrying cannot help


@pytest.mark.asyncio
async def test_token_endpoint_outage_during_a_refresh_is_retried_within_budget(
    emulator: Emulator, clock: ManualClock, emulator_url: str
) -> None:
    """The token expires and the token endpoint answers 503 once: the poll backs off and succeeds,
    instead of failing every trigger of that identity at once."""
    fake = VirtualTime()
    provider = oauth_provider(emulator_url)
    async with DatabricksClient(
        emulator_url, provider, settings=FAST, clock=fake.monotonic, sleep=fake.sleep
    ) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        clock.advance(2 * 3600)
        emulator.inject_fault(endpoint="oidc/v1/token", kind="http_error", status=503, count=1)
        run = await client.get_run(run_id)

    assert run_id == run.run_id
    assert 1 == len([wait for wait in fake.sleeps if wait > 0])


@pytest.mark.asyncio
async def test_a_hung_token_refresh_times_out_as_a_transient_credentials_error() -> None:
    """The SDK fetches tokens without a timeout; waiters give up after refresh_timeout_seconds."""
    gate = threading.Event()  # opened only after the test: the refresh hangs until then
    config = FakeConfig({"Authorization": "Bearer t"}, gate=gate)
    provider = SdkHeaderProvider(lambda: config, identity="test:hung", refresh_timeout_seconds=0.05)  # type: ignore[arg-type,return-value]
    try:
        with pytest.raises(CredentialsError) as excinfo:
            await provider.headers()
    finally:
        gate.set()

    assert excinfo.value.transient
    assert "did not finish within 0.05 s" in str(excinfo.value)


def test_a_provider_without_identity_is_refused() -> None:
    """Sessions are keyed by identity; an empty one would merge unrelated credentials."""
    with pytest.raises(ValueError, match="non-empty, non-secret identity"):
        SdkHeaderProvider(lambda: Config(), identity="")


@pytest.mark.asyncio
async def test_a_rejection_during_a_refresh_wins_over_that_refresh() -> None:
    """Credentials invalidated while a refresh is under way are not resurrected by its result."""
    gate = threading.Event()
    configs: list[FakeConfig] = []

    def factory() -> Any:
        # The first refresh blocks until the test has invalidated the credentials; the next does not.
        headers = {"Authorization": f"Bearer t{len(configs)}"}
        configs.append(FakeConfig(headers, gate=None if configs else gate))
        return configs[-1]

    provider = SdkHeaderProvider(factory, identity="test:race")
    in_flight = asyncio.create_task(provider.headers())
    await eventually(lambda: bool(configs))
    await entered(configs[0])
    provider.invalidate()
    gate.set()
    await in_flight
    latest = await provider.headers()

    assert 2 == len(configs)
    assert {"Authorization": "Bearer t1"} == dict(latest)

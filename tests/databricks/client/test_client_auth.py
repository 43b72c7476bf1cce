"""Auth through databricks-sdk: refreshes never block the loop, are shared, and are retried once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from client_testkit import FakeConfig, LoopLagProbe
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
async def test_oauth_token_expiring_while_polling_is_refreshed_without_blocking_the_loop(
    emulator: Emulator, clock: ManualClock, emulator_url: str
) -> None:
    """20 pollers see the OAuth token expire while the token endpoint takes 2 s to answer.

    One refresh serves all of them, every poll succeeds, and the event loop never stalls: the
    worst wake-up lag of a 10 ms ticker stays under 0.1 s throughout.
    """
    provider = oauth_provider(emulator_url)
    async with DatabricksClient(emulator_url, provider, settings=FAST) as client:
        run_id = await client.submit_run(SPEC, idempotency_token=None)
        tokens_before = emulator.counters().requests_by_endpoint["oidc/v1/token"]
        # The workspace now judges the token expired; the SDK, on its own clock, still trusts it.
        clock.advance(2 * 3600)
        emulator.inject_fault(endpoint="oidc/v1/token", kind="latency", delay_seconds=2.0, count=1)
        async with LoopLagProbe() as probe:
            runs = await asyncio.gather(*(client.get_run(run_id) for _ in range(20)))

    assert {run_id} == {run.run_id for run in runs}
    assert 1 == emulator.counters().requests_by_endpoint["oidc/v1/token"] - tokens_before
    assert probe.samples > 50  # the ticker kept running during the 2 s refresh
    assert probe.max_lag_seconds < 0.1, f"event loop stalled for {probe.max_lag_seconds:.3f} s"
    print(f"max event-loop lag during a 2 s OAuth refresh: {probe.max_lag_seconds * 1000:.1f} ms")


@pytest.mark.asyncio
async def test_concurrent_callers_share_one_blocking_refresh() -> None:
    """100 callers needing headers at once cause one Config and one authenticate(), off the loop."""
    configs: list[FakeConfig] = []

    def factory() -> Any:
        configs.append(FakeConfig({"Authorization": "Bearer t"}, block_seconds=0.3))
        return configs[-1]

    provider = SdkHeaderProvider(factory, identity="test:fake")
    async with LoopLagProbe() as probe:
        results = await asyncio.gather(*(provider.headers() for _ in range(100)))

    assert 1 == len(configs)
    assert 1 == configs[0].authentications
    assert [{"Authorization": "Bearer t"}] * 100 == [dict(headers) for headers in results]
    assert probe.max_lag_seconds < 0.1


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
    config = FakeConfig({"Authorization": "Bearer t"}, block_seconds=0.5)
    provider = SdkHeaderProvider(lambda: config, identity="test:hung", refresh_timeout_seconds=0.05)  # type: ignore[arg-type,return-value]
    with pytest.raises(CredentialsError) as excinfo:
        await provider.headers()

    assert excinfo.value.transient
    assert "did not finish within 0.05 s" in str(excinfo.value)


def test_a_provider_without_identity_is_refused() -> None:
    """Sessions are keyed by identity; an empty one would merge unrelated credentials."""
    with pytest.raises(ValueError, match="non-empty, non-secret identity"):
        SdkHeaderProvider(lambda: Config(), identity="")


@pytest.mark.asyncio
async def test_a_rejection_during_a_refresh_wins_over_that_refresh() -> None:
    """Credentials invalidated while a refresh is under way are not resurrected by its result."""
    configs: list[FakeConfig] = []

    def factory() -> Any:
        configs.append(FakeConfig({"Authorization": f"Bearer t{len(configs)}"}, block_seconds=0.1))
        return configs[-1]

    provider = SdkHeaderProvider(factory, identity="test:race")
    in_flight = asyncio.create_task(provider.headers())
    await asyncio.sleep(0.02)
    provider.invalidate()
    await in_flight
    latest = await provider.headers()

    assert 2 == len(configs)
    assert {"Authorization": "Bearer t1"} == dict(latest)

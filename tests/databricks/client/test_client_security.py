"""No credential ever reaches a log line, an exception message or a repr."""

from __future__ import annotations

import base64
import logging

import pytest
from databricks.sdk.config import Config

from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    DatabricksError,
    SdkHeaderProvider,
)
from resumable_triggers.testing import Emulator, ManualClock, VirtualTime

TOKEN = "dapi-emulator-token"
WRONG_TOKEN = "dapi-wrong-secret-token"
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"
SPEC = {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


@pytest.mark.asyncio
async def test_no_secret_appears_in_debug_logs_errors_or_reprs(
    emulator: Emulator, clock: ManualClock, emulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole session at DEBUG (PAT, OAuth M2M with a refresh, 401s, 5xx, lost answers, unknown runs)
    leaves no token, client secret or issued access token in logs, messages or reprs."""
    caplog.set_level(logging.DEBUG)
    fake = VirtualTime()
    settings = ClientSettings(requests_per_second=1000, burst=1000, retry_budget_seconds=5, jitter_seconds=0)
    pat = SdkHeaderProvider(lambda: Config(host=emulator_url, token=TOKEN), identity="conn:pat")
    oauth = SdkHeaderProvider(
        lambda: Config(host=emulator_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
        identity="conn:m2m",
    )
    wrong = SdkHeaderProvider(lambda: Config(host=emulator_url, token=WRONG_TOKEN), identity="conn:wrong")
    errors: list[BaseException] = []
    objects: list[object] = [pat, oauth, wrong]
    for headers in (pat, oauth, wrong):
        client = DatabricksClient(
            emulator_url, headers, settings=settings, clock=fake.monotonic, sleep=fake.sleep
        )
        objects.append(client)
        async with client:
            try:
                run_id = await client.submit_run(SPEC, idempotency_token="t-1")
                objects.append(await client.get_run(run_id))
                clock.advance(2 * 3600)  # expires OAuth tokens: forces a refresh
                objects.append(await client.get_run(run_id))
                # backoff 1 s + 2 s, then 4 s would exceed the 5 s budget: exactly three attempts
                emulator.inject_fault(endpoint="runs/get", kind="http_error", status=503, count=3)
                await client.get_run(run_id)
            except DatabricksError as exc:
                errors.append(exc)
            emulator.inject_fault(endpoint="runs/submit", kind="lose_response", count=1)
            for call in (client.submit_run(SPEC, idempotency_token=None), client.get_run(424242)):
                try:
                    await call
                except DatabricksError as exc:
                    errors.append(exc)

    issued = [record for record in emulator.request_log if record.endpoint == "oidc/v1/token"]
    texts = [caplog.text]
    texts += [text for error in errors for link in _chain(error) for text in (str(link), repr(link))]
    texts += [repr(item) for item in objects]
    secrets = [
        TOKEN,
        WRONG_TOKEN,
        CLIENT_SECRET,
        "emu-oauth-",
        base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode(),
    ]
    assert issued, "the OAuth identity never fetched a token: the test would prove nothing"
    assert len(errors) >= 7
    assert [] == [secret for secret in secrets for text in texts if secret in text]

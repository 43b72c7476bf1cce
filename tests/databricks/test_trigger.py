"""DatabricksRunTrigger driven the way a triggerer drives it, against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from resumable_triggers.databricks import DatabricksRunTrigger, RunEvent
from resumable_triggers.databricks.client import DatabricksClient, SdkHeaderProvider
from resumable_triggers.resume import EventOutcome
from resumable_triggers.testing import Emulator, EmulatorServer, ManualClock
from resumable_triggers.testing._pytest_plugin import airflow_connection

pytestmark = pytest.mark.timeout(60)


class Workspace:
    def __init__(self, emulator: Emulator, url: str) -> None:
        self.emulator = emulator
        self.url = url

    async def submit(self, **params: str) -> int:
        """Submit a one-task run whose outcome is declared through emulator.* parameters."""
        from databricks.sdk.config import Config

        headers = SdkHeaderProvider(lambda: Config(host=self.url, token=self.emulator.token), identity="test")
        spec = {
            "run_name": "t",
            "tasks": [
                {"task_key": "main", "notebook_task": {"notebook_path": "/x", "base_parameters": params}}
            ],
        }
        async with DatabricksClient(self.url, headers) as client:
            return await client.submit_run(spec, idempotency_token=None)


@pytest_asyncio.fixture
async def workspace(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Workspace]:
    emulator = Emulator(run_seconds=0.5)
    async with EmulatorServer(emulator) as server:
        monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", airflow_connection(server.url, emulator.token))
        yield Workspace(emulator, server.url)


async def first_event(trigger: DatabricksRunTrigger) -> RunEvent:
    event = await anext(trigger.run())
    return RunEvent.from_payload(event.payload)


def trigger_for(run_id: int, **kwargs: Any) -> DatabricksRunTrigger:
    return DatabricksRunTrigger(external_id=run_id, poll_interval_seconds=0.05, **kwargs)


@pytest.mark.asyncio
async def test_successful_run_fires_one_success_event_with_url_and_duration(workspace: Workspace) -> None:
    """The event says SUCCESS and carries the run page URL and the run's duration."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "0.3"})
    event = await first_event(trigger_for(run_id))
    run = workspace.emulator.get_run(run_id)
    assert (EventOutcome.SUCCEEDED, "TERMINATED/SUCCESS", run["run_page_url"]) == (
        event.outcome,
        event.state,
        event.url,
    )
    assert event.run_duration_seconds is not None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("declared", "state"),
    [
        ("FAILED", "TERMINATED/FAILED"),
        ("TIMEDOUT", "TERMINATED/TIMEDOUT"),
        ("INTERNAL_ERROR", "INTERNAL_ERROR/FAILED"),
    ],
)
async def test_unsuccessful_runs_fire_one_failed_event(
    workspace: Workspace, declared: str, state: str
) -> None:
    """Failed, timed-out and internal-error runs each end the watch with a failed event naming the state."""
    run_id = await workspace.submit(**{"emulator.result_state": declared, "emulator.duration_seconds": "0.2"})
    event = await first_event(trigger_for(run_id))
    assert (EventOutcome.FAILED, state.split("/")[0]) == (event.outcome, event.life_cycle_state)


@pytest.mark.asyncio
async def test_failed_run_event_carries_each_failed_tasks_error(workspace: Workspace) -> None:
    """The failed task's error and trace from get-output travel in the event, typed."""
    run_id = await workspace.submit(**{"emulator.result_state": "FAILED", "emulator.error": "disk full"})
    event = await first_event(trigger_for(run_id))
    [failure] = event.task_failures
    assert ("main", "disk full") == (failure.task_key, failure.error)
    assert "disk full" in event.message


@pytest.mark.asyncio
async def test_cancelled_run_fires_failed_event_with_canceled_result(workspace: Workspace) -> None:
    """A run cancelled by someone else is reported as CANCELED, after passing through TERMINATING."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    watch = asyncio.ensure_future(first_event(trigger_for(run_id)))
    await asyncio.sleep(0.2)
    workspace.emulator.finish_run(run_id, result_state="CANCELED")
    event = await watch
    assert (EventOutcome.FAILED, "CANCELED") == (event.outcome, event.result_state)


@pytest.mark.asyncio
async def test_deleted_run_is_reported_gone_not_retried_forever(workspace: Workspace) -> None:
    """An unknown run id (deleted, or removed after 60 days) ends the watch with a failed event."""
    event = await first_event(trigger_for(123456789))
    assert (EventOutcome.FAILED, "GONE") == (event.outcome, event.state)


@pytest.mark.asyncio
async def test_5xx_storm_is_absorbed_without_failing_the_task(workspace: Workspace) -> None:
    """Transient server errors while watching are retried; the event still reports the real outcome."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "0.3"})
    workspace.emulator.inject_fault(endpoint="runs/get", kind="http_error", count=2, status=503)
    event = await first_event(trigger_for(run_id))
    assert EventOutcome.SUCCEEDED == event.outcome
    assert 2 == workspace.emulator.counters().responses_by_status.get(503, 0)


@pytest.mark.asyncio
async def test_exhausted_error_budget_hands_the_task_back_with_a_watch_error(workspace: Workspace) -> None:
    """When the workspace stays unreachable past the error budget, the trigger fires a watch error
    (the retry reconnects to the same run) instead of failing it or polling forever."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    workspace.emulator.inject_fault(endpoint="runs/get", kind="http_error", count=10_000, status=500)
    event = await first_event(trigger_for(run_id, error_budget_seconds=0.0))
    assert (EventOutcome.WATCH_ERROR, run_id) == (event.outcome, event.external_id)
    assert "RUNNING" != workspace.emulator.get_run(run_id)["state"].get("result_state")


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [403, 400])
async def test_permanent_error_ends_the_watch_at_once_naming_status_and_endpoint(
    workspace: Workspace, status: int
) -> None:
    """A 403 (after one re-read of the credentials) or a 400 while watching is not waited out for the
    30-minute error budget: the watch ends on first sight with a WATCH_ERROR whose message names the
    status and the endpoint, and the run is left alone."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    polls = ("runs/get", "runs/list")
    for endpoint in polls:
        workspace.emulator.inject_fault(endpoint=endpoint, kind="http_error", count=10, status=status)
    event = await first_event(trigger_for(run_id))
    assert (EventOutcome.WATCH_ERROR, run_id) == (event.outcome, event.external_id)
    assert f"HTTP {status}" in event.message
    assert "jobs/runs/" in event.message
    counts = workspace.emulator.counters().requests_by_endpoint
    # A 403 re-reads the credentials and tries once more; a 400 is not repeated at all.
    sent, cancels = sum(counts.get(e, 0) for e in polls), counts.get("runs/cancel", 0)
    assert (2 if status == 403 else 1, 0) == (sent, cancels)


@pytest.mark.asyncio
async def test_user_kill_cancels_the_run_when_cancel_on_kill(workspace: Workspace) -> None:
    """on_kill (a user marked the deferred task failed or cleared it) cancels the run."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    await trigger_for(run_id).on_kill()
    assert 1 == workspace.emulator.counters().requests_by_endpoint.get("runs/cancel", 0)


@pytest.mark.asyncio
async def test_user_kill_leaves_the_run_alone_without_cancel_on_kill(workspace: Workspace) -> None:
    """With cancel_on_kill=False a user's kill never touches the run."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    await trigger_for(run_id, cancel_on_kill=False).on_kill()
    assert 0 == workspace.emulator.counters().requests_by_endpoint.get("runs/cancel", 0)


@pytest.mark.asyncio
async def test_triggerer_shutdown_mid_poll_never_cancels_the_run(workspace: Workspace) -> None:
    """A triggerer stop cancels the trigger's task (CancelledError); the run keeps running."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    watch = asyncio.ensure_future(first_event(trigger_for(run_id)))
    await asyncio.sleep(0.2)
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch
    assert workspace.emulator.get_run(run_id)["state"]["life_cycle_state"] in ("PENDING", "RUNNING")
    assert 0 == workspace.emulator.counters().requests_by_endpoint.get("runs/cancel", 0)


@pytest.mark.asyncio
async def test_rebuilt_trigger_resumes_the_same_run(workspace: Workspace) -> None:
    """After a triggerer restart the trigger is rebuilt from serialize() and watches the same run."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "0.3"})
    classpath, kwargs = trigger_for(run_id).serialize()
    event = await first_event(DatabricksRunTrigger(**kwargs))
    assert ("resumable_triggers.databricks.DatabricksRunTrigger", run_id, EventOutcome.SUCCEEDED) == (
        classpath,
        event.external_id,
        event.outcome,
    )


def test_serialized_kwargs_hold_no_secrets_and_are_plain_json() -> None:
    """Trigger kwargs are stored in Airflow's database: only a connection id, plain numbers and flags."""
    _, kwargs = DatabricksRunTrigger(external_id=1, databricks_conn_id="prod").serialize()
    assert {
        "external_id": 1,
        "poll_interval_seconds": 30.0,
        "cancel_on_kill": True,
        "error_budget_seconds": 1800.0,
        "databricks_conn_id": "prod",
        "run_page_url": None,
        "requests_per_second": kwargs["requests_per_second"],
    } == kwargs
    assert isinstance(kwargs["requests_per_second"], float)


def test_trigger_rejects_nonsense_intervals_at_construction() -> None:
    """A zero poll interval fails when the operator builds the trigger, naming the argument."""
    with pytest.raises(ValueError, match="poll_interval_seconds"):
        DatabricksRunTrigger(external_id=1, poll_interval_seconds=0)


def test_event_payload_round_trips() -> None:
    """What the trigger fires is exactly what the task reads back, nested task failures included."""
    from resumable_triggers.databricks import TaskFailure

    event = RunEvent(
        outcome=EventOutcome.FAILED,
        external_id=7,
        state="TERMINATED/FAILED",
        task_failures=(TaskFailure(task_key="a", run_id=8, state="TERMINATED", error="boom"),),
    )
    assert event == RunEvent.from_payload(event.to_payload())


def test_manual_clock_is_exported_for_virtual_time_tests() -> None:
    """The emulator's virtual clock is public, for users' own fast trigger tests."""
    clock = ManualClock(start=100.0)
    clock.advance(5)
    assert 105.0 == clock()

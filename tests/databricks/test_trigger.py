"""DatabricksRunTrigger driven the way a triggerer drives it, against the emulator over real HTTP.

The emulator, the trigger and its shared client all read one ``VirtualTime``: a 30 s run takes as
many polls as it would in a triggerer, and no test waits for any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from resumable_triggers.databricks import DatabricksRunTrigger, RunEvent
from resumable_triggers.databricks.client import DatabricksClient, SdkHeaderProvider
from resumable_triggers.resume import EventOutcome, JobStatus
from resumable_triggers.resume._kill import TaskView, WatchMarker
from resumable_triggers.testing import Emulator, EmulatorFactory, ManualClock, VirtualTime

pytestmark = pytest.mark.timeout(60)


EPOCH = 1_750_000_000.0  # the emulator's virtual time starts at a plausible instant


class Workspace:
    def __init__(self, emulator: Emulator, url: str, time: VirtualTime) -> None:
        self.emulator = emulator
        self.url = url
        self.time = time

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


@pytest.fixture
def workspace(databricks_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    time = VirtualTime()
    served = databricks_emulator_factory(Emulator(run_seconds=0.5, clock=lambda: EPOCH + time.monotonic()))
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT", served.environment()["AIRFLOW_CONN_DATABRICKS_DEFAULT"]
    )
    return Workspace(served.emulator, served.url, time)


async def first_event(trigger: DatabricksRunTrigger) -> RunEvent:
    event = await anext(trigger.run())
    return RunEvent.from_payload(event.payload)


def trigger_for(workspace: Workspace, run_id: int, **kwargs: Any) -> Observed:
    time = workspace.time
    return Observed(
        external_id=run_id, poll_interval_seconds=0.05, clock=time.monotonic, sleep=time.sleep, **kwargs
    )


class Observed(DatabricksRunTrigger):
    """The trigger, telling the test once it has seen the run, so a test can act mid-watch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watching = asyncio.Event()

    async def observe(self) -> AsyncIterator[JobStatus]:
        async for status in super().observe():
            self.watching.set()
            yield status


@pytest.mark.asyncio
async def test_successful_run_fires_one_success_event_with_url_and_duration(workspace: Workspace) -> None:
    """The event says SUCCESS and carries the run page URL and the run's duration."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "0.3"})
    event = await first_event(trigger_for(workspace, run_id))
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
    event = await first_event(trigger_for(workspace, run_id))
    assert (EventOutcome.FAILED, state.split("/")[0]) == (event.outcome, event.life_cycle_state)


@pytest.mark.asyncio
async def test_failed_run_event_carries_each_failed_tasks_error(workspace: Workspace) -> None:
    """The failed task's error and trace from get-output travel in the event, typed."""
    run_id = await workspace.submit(**{"emulator.result_state": "FAILED", "emulator.error": "disk full"})
    event = await first_event(trigger_for(workspace, run_id))
    [failure] = event.task_failures
    assert ("main", "disk full") == (failure.task_key, failure.error)
    assert "disk full" in event.message


@pytest.mark.asyncio
async def test_cancelled_run_fires_failed_event_with_canceled_result(workspace: Workspace) -> None:
    """A run cancelled by someone else is reported as CANCELED, after passing through TERMINATING."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "3600"})
    trigger = trigger_for(workspace, run_id)
    watch = asyncio.ensure_future(first_event(trigger))
    await trigger.watching.wait()
    workspace.emulator.finish_run(run_id, result_state="CANCELED")
    event = await watch
    assert (EventOutcome.FAILED, "CANCELED") == (event.outcome, event.result_state)


@pytest.mark.asyncio
async def test_deleted_run_is_reported_gone_not_retried_forever(workspace: Workspace) -> None:
    """An unknown run id (deleted, or removed after 60 days) ends the watch with a failed event."""
    event = await first_event(trigger_for(workspace, 123456789))
    assert (EventOutcome.FAILED, "GONE") == (event.outcome, event.state)


@pytest.mark.asyncio
async def test_5xx_storm_is_absorbed_without_failing_the_task(workspace: Workspace) -> None:
    """Transient server errors while watching are retried; the event still reports the real outcome."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "0.3"})
    workspace.emulator.inject_fault(endpoint="runs/get", kind="http_error", count=2, status=503)
    event = await first_event(trigger_for(workspace, run_id))
    assert EventOutcome.SUCCEEDED == event.outcome
    assert 2 == workspace.emulator.counters().responses_by_status.get(503, 0)


@pytest.mark.asyncio
async def test_exhausted_error_budget_hands_the_task_back_with_a_watch_error(workspace: Workspace) -> None:
    """When the workspace stays unreachable past the error budget, the trigger fires a watch error
    (the retry reconnects to the same run) instead of failing it or polling forever."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    workspace.emulator.inject_fault(endpoint="runs/get", kind="http_error", count=10_000, status=500)
    event = await first_event(trigger_for(workspace, run_id, error_budget_seconds=0.0))
    assert (EventOutcome.WATCH_ERROR, run_id) == (event.outcome, event.external_id)
    assert "RUNNING" != workspace.emulator.get_run(run_id)["state"].get("result_state")


class SeenByAirflow(DatabricksRunTrigger):
    """The trigger with Airflow's view of its task replaced by a script: one view per look, the last
    one repeating (a view that is an exception is raised, as an unreachable supervisor would)."""

    def __init__(self, views: list[TaskView | Exception], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.views = views
        self.looks = 0

    async def read_task_view(self) -> TaskView:
        view = self.views[min(self.looks, len(self.views) - 1)]
        self.looks += 1
        if isinstance(view, Exception):
            raise view
        return view


def killed(
    run_id: int, *views: TaskView | Exception, time: VirtualTime | None = None, **kwargs: Any
) -> SeenByAirflow:
    time = time or VirtualTime()
    return SeenByAirflow(
        list(views),
        external_id=run_id,
        poll_interval_seconds=0.05,
        clock=time.monotonic,
        sleep=time.sleep,
        **kwargs,
    )


def deferred_on(run_id: int, try_number: int = 1) -> TaskView:
    return TaskView(state="deferred", marker=WatchMarker(try_number=try_number, external_id=run_id))


def cancels(workspace: Workspace) -> int:
    return workspace.emulator.counters().requests_by_endpoint.get("runs/cancel", 0)


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
    event = await first_event(trigger_for(workspace, run_id))
    assert (EventOutcome.WATCH_ERROR, run_id) == (event.outcome, event.external_id)
    assert f"HTTP {status}" in event.message
    assert "jobs/runs/" in event.message
    counts = workspace.emulator.counters().requests_by_endpoint
    # A 403 re-reads the credentials and tries once more; a 400 is not repeated at all.
    sent, cancels = sum(counts.get(e, 0) for e in polls), counts.get("runs/cancel", 0)
    assert (2 if status == 403 else 1, 0) == (sent, cancels)


@pytest.mark.asyncio
async def test_user_marks_deferred_task_failed_cancels_the_run(workspace: Workspace) -> None:
    """on_kill with the task marked failed by a user cancels the still-running run."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    await killed(run_id, TaskView(state="failed", marker=None)).on_kill()
    assert 1 == cancels(workspace)


@pytest.mark.asyncio
async def test_trigger_reassigned_to_another_triggerer_cancels_nothing(workspace: Workspace) -> None:
    """Airflow's on_kill on a stale triggerer whose trigger went to another one (apache/airflow#73454):
    the task is still deferred on this run, so the run keeps running and no cancel is sent."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    await killed(run_id, deferred_on(run_id)).on_kill()
    run = workspace.emulator.get_run(run_id)
    assert (0, True) == (cancels(workspace), run["state"]["life_cycle_state"] in ("PENDING", "RUNNING"))


@pytest.mark.asyncio
async def test_user_kill_leaves_the_run_alone_without_cancel_on_kill(workspace: Workspace) -> None:
    """With cancel_on_kill=False a user's kill never touches the run."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    await killed(run_id, TaskView(state="failed", marker=None), cancel_on_kill=False).on_kill()
    assert 0 == cancels(workspace)


@pytest.mark.asyncio
async def test_clear_seen_while_the_next_try_starts_cancels_once_it_defers_on_a_new_run(
    workspace: Workspace,
) -> None:
    """A user cleared the deferred task; on_kill first sees the next try being scheduled and starting
    (undecided), then deferred on the run it submitted: the old run is cancelled, after looking again."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    trigger = killed(
        run_id,
        TaskView(state="queued", marker=WatchMarker(try_number=1, external_id=run_id)),
        TaskView(state="running", marker=None),
        deferred_on(run_id + 1000, try_number=2),
    )
    await trigger.on_kill()
    assert (1, 3) == (cancels(workspace), trigger.looks)


@pytest.mark.asyncio
async def test_task_that_never_settles_keeps_the_run_and_logs_an_error_naming_it(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    """The task stays between steps (or Airflow cannot be read) for the whole on_kill budget: the
    run keeps running, and an error names the run and its page, all within two thirds of Airflow's
    on_kill_timeout of (virtual) time."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    time = VirtualTime()
    await killed(run_id, TaskView(state="running", marker=None), ConnectionError("gone"), time=time).on_kill()
    [error] = [r for r in caplog.records if r.levelname == "ERROR"]
    url = workspace.emulator.get_run(run_id)["run_page_url"]
    assert (0, True, True) == (
        cancels(workspace),
        str(run_id) in error.getMessage(),
        url in error.getMessage(),
    )
    assert 20.0 == sum(time.sleeps)


@pytest.mark.asyncio
async def test_kill_after_the_run_finished_sends_no_cancel(workspace: Workspace) -> None:
    """The other triggerer already saw the run end and the task finished: nothing is cancelled."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    workspace.emulator.finish_run(run_id)
    await killed(run_id, TaskView(state="success", marker=None)).on_kill()
    assert 0 == cancels(workspace)


@pytest.mark.asyncio
async def test_kill_of_a_run_already_being_cancelled_sends_no_second_cancel(workspace: Workspace) -> None:
    """A user's mark failed is decided twice when a triggerer runs the trigger (its ``on_kill``, the API
    server's listener): the second finds the run TERMINATING and leaves it to end."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    await killed(run_id, TaskView(state="failed", marker=None)).on_kill()
    assert "TERMINATING" == workspace.emulator.get_run(run_id)["state"]["life_cycle_state"]
    await killed(run_id, TaskView(state="failed", marker=None)).on_kill()
    assert 1 == cancels(workspace)


class SlowToAnswer(SeenByAirflow):
    """Airflow's answer arrives only when the test says so, so on_kill is caught mid-decision."""

    def __init__(self, views: list[TaskView | Exception], **kwargs: Any) -> None:
        super().__init__(views, **kwargs)
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def read_task_view(self) -> TaskView:
        self.asked.set()
        await self.answer.wait()
        return await super().read_task_view()


@pytest.mark.asyncio
async def test_airflows_repeated_cancels_do_not_interrupt_the_kill_decision(workspace: Workspace) -> None:
    """The triggerer re-sends its user-action cancel on every loop until the trigger ends; each lands
    in on_kill while it waits for Airflow's answer. The decision still completes: the run of a task
    marked failed is cancelled."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    time = VirtualTime()
    trigger = SlowToAnswer(
        [TaskView(state="failed", marker=None)],
        external_id=run_id,
        poll_interval_seconds=0.05,
        clock=time.monotonic,
        sleep=time.sleep,
    )
    kill = asyncio.ensure_future(trigger.on_kill())
    await trigger.asked.wait()
    for _ in range(3):
        kill.cancel("__airflow_user_action__")
        await asyncio.sleep(0)
    trigger.answer.set()
    await kill
    assert 1 == cancels(workspace)


@pytest.mark.asyncio
async def test_trigger_outside_a_triggerer_cannot_read_its_task_and_cancels_nothing(
    workspace: Workspace,
) -> None:
    """Without a task instance (not in a triggerer) the task's state is unknowable: no cancel."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "30"})
    time = VirtualTime()
    await DatabricksRunTrigger(external_id=run_id, clock=time.monotonic, sleep=time.sleep).on_kill()
    assert 0 == cancels(workspace)


@pytest.mark.asyncio
async def test_triggerer_shutdown_mid_poll_never_cancels_the_run(workspace: Workspace) -> None:
    """A triggerer stop cancels the trigger's task (CancelledError); the run keeps running."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "3600"})
    trigger = trigger_for(workspace, run_id)
    watch = asyncio.ensure_future(first_event(trigger))
    await trigger.watching.wait()
    watch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watch
    assert workspace.emulator.get_run(run_id)["state"]["life_cycle_state"] in ("PENDING", "RUNNING")
    assert 0 == workspace.emulator.counters().requests_by_endpoint.get("runs/cancel", 0)


@pytest.mark.asyncio
async def test_rebuilt_trigger_resumes_the_same_run(workspace: Workspace) -> None:
    """After a triggerer restart the trigger is rebuilt from serialize() and watches the same run."""
    run_id = await workspace.submit(**{"emulator.duration_seconds": "0.3"})
    classpath, kwargs = trigger_for(workspace, run_id).serialize()
    time = workspace.time
    event = await first_event(DatabricksRunTrigger(**kwargs, clock=time.monotonic, sleep=time.sleep))
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


def test_workspace_share_splits_the_request_budget_between_triggerers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``[resumable_triggers] workspace_share = 0.5`` (two triggerers), each triggerer paces its
    triggers at half the workspace's allowance, with half the burst."""
    from resumable_triggers.databricks._trigger import _settings, workspace_share

    monkeypatch.setenv("AIRFLOW__RESUMABLE_TRIGGERS__WORKSPACE_SHARE", "0.5")
    settings = _settings(30.0, 1800.0, workspace_share())
    assert (0.5, 15.0, 10) == (workspace_share(), settings.requests_per_second, settings.burst)


@pytest.mark.parametrize("value", ["0", "1.5", "-1", "half", "nan"])
def test_workspace_share_outside_zero_to_one_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A share that could multiply the load on the workspace (or mean nothing) names the option."""
    from resumable_triggers.databricks._trigger import workspace_share

    monkeypatch.setenv("AIRFLOW__RESUMABLE_TRIGGERS__WORKSPACE_SHARE", value)
    with pytest.raises(ValueError, match=r"\[resumable_triggers\] workspace_share"):
        workspace_share()

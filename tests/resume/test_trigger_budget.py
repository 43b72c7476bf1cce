"""The watch loop's error budget and its transient/permanent split, on a virtual clock (no sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar

import pytest

from resumable_triggers.resume import EventOutcome, JobEvent, JobPhase, JobStatus, ResumableJobTrigger
from resumable_triggers.testing import VirtualTime

pytestmark = pytest.mark.timeout(30)


class Permanent(Exception):
    """Stands for a 403: the scripted trigger's predicate calls it permanent."""


class ScriptedTrigger(ResumableJobTrigger):
    """Each observe() pass plays the next step: an exception to raise, or statuses to yield.

    A step may also cost virtual time (``("cost", seconds)``), as a slow failing request would."""

    classpath = "tests.resume.test_trigger_budget.ScriptedTrigger"
    watch_errors: ClassVar[tuple[type[Exception], ...]] = (OSError, Permanent)

    def __init__(self, steps: Iterable[Any], time: VirtualTime, **kwargs: Any) -> None:
        super().__init__(clock=time.monotonic, sleep=time.sleep, **kwargs)
        self.steps = list(steps)
        self.time = time

    @staticmethod
    def is_transient(error: Exception) -> bool:
        return not isinstance(error, Permanent)

    async def observe(self) -> AsyncIterator[JobStatus]:
        step = self.steps.pop(0)
        while isinstance(step, tuple) and step[0] == "cost":
            self.time.now += step[1]
            step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        for status in step:
            yield status


ACTIVE = JobStatus(JobPhase.ACTIVE, "RUNNING", "")
DONE = JobStatus(JobPhase.SUCCEEDED, "TERMINATED/SUCCESS", "")


def watch(steps: Iterable[Any], time: VirtualTime, **kwargs: Any) -> JobEvent:
    trigger = ScriptedTrigger(steps, time, external_id=7, poll_interval_seconds=30.0, **kwargs)
    return asyncio.run(trigger._watch())


def test_errors_within_a_600_s_budget_are_absorbed_and_the_real_outcome_is_reported() -> None:
    """Ten minutes' budget, nine minutes of failing polls (virtual): the watch carries on and reports
    the job's success; the waits between polls grow but never exceed the poll interval."""
    time = VirtualTime(start=1000.0)
    steps = [[ACTIVE], *[("cost", 60.0), OSError("reset")] * 7, [DONE]]
    event = watch(steps, time, error_budget_seconds=600.0)
    assert (EventOutcome.SUCCEEDED, "TERMINATED/SUCCESS") == (event.outcome, event.state)
    assert [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0] == time.sleeps


def test_budget_spent_gives_up_with_a_watch_error_after_the_budget_not_before() -> None:
    """With a 600 s budget, failures costing 100 s each (virtual): the watch gives up on the first
    failure at or past 600 s without a successful poll, names the error and keeps the last state."""
    time = VirtualTime(start=1000.0)
    start = time.now
    steps = [[ACTIVE], *[("cost", 100.0), OSError("connection refused")] * 20]
    event = watch(steps, time, error_budget_seconds=600.0)
    assert EventOutcome.WATCH_ERROR == event.outcome
    assert ("RUNNING", True) == (event.state, "connection refused" in event.message)
    assert 600.0 <= time.now - start < 600.0 + 100.0 + 30.0


def test_a_successful_poll_refills_the_budget() -> None:
    """Two bursts of failures, each shorter than the budget, separated by one good poll: both absorbed."""
    time = VirtualTime(start=1000.0)
    burst = [("cost", 100.0), OSError("blip")] * 4  # ~400 s + waits, under 500 s
    event = watch([[ACTIVE], *burst, [ACTIVE], *burst, [DONE]], time, error_budget_seconds=500.0)
    assert EventOutcome.SUCCEEDED == event.outcome


def test_permanent_error_ends_the_watch_at_once_despite_a_30_minute_budget() -> None:
    """A permanent error (a 403, say) is reported on first sight: no waiting, no budget spent, and the
    event's message names it."""
    time = VirtualTime(start=1000.0)
    event = watch([[ACTIVE], Permanent("HTTP 403 PERMISSION_DENIED on jobs/runs/list")], time)
    assert (EventOutcome.WATCH_ERROR, [], 1000.0) == (event.outcome, time.sleeps, time.now)
    assert "permanent" in event.message
    assert "HTTP 403 PERMISSION_DENIED on jobs/runs/list" in event.message


def test_errors_outside_watch_errors_propagate_as_bugs() -> None:
    """An exception the trigger does not declare (a bug) is not dressed up as a watch error."""
    with pytest.raises(KeyError):
        watch([[ACTIVE], KeyError("bug")], VirtualTime(start=1000.0))


def test_clock_and_sleep_seams_are_never_serialized() -> None:
    """Airflow rebuilds triggers from kwargs alone: the seams must not leak into them."""
    trigger = ScriptedTrigger([], VirtualTime(start=1000.0), external_id=7)
    assert {"external_id", "poll_interval_seconds", "cancel_on_kill", "error_budget_seconds"} == set(
        trigger.serialize()[1]
    )


def test_virtual_time_records_every_sleep_and_never_goes_back() -> None:
    """The public ``VirtualTime`` moves by exactly what is slept or advanced, and refuses to rewind."""
    time = VirtualTime(start=5.0)
    asyncio.run(time.sleep(2.5))
    time.advance(1.0)
    assert (8.5, [2.5]) == (time.monotonic(), time.sleeps)
    with pytest.raises(ValueError, match="backwards"):
        time.advance(-1)

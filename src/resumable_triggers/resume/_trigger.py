"""The provider-agnostic trigger: watch one external job, absorb transient trouble, fire one event.

A subclass names its kwargs dataclass (``Args``), its pinned ``classpath`` and how to observe and cancel
its job; the base owns the loop, the error budget, state-change logging and kill semantics. Its kwargs
and its event payload both derive from dataclasses, so what is stored in Airflow's database and what
the operator reads back cannot drift from what the code declares.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from airflow.sdk import conf
from airflow.sdk.observability import stats
from airflow.triggers.base import BaseTrigger, TriggerEvent

from resumable_triggers._clock import Clock, Sleep
from resumable_triggers.resume._decision import JobPhase, JobStatus
from resumable_triggers.resume._kill import (
    WATCH_MARKER_KEY,
    KillVerdict,
    TaskView,
    WatchMarker,
    kill_verdict,
    task_state_key,
)
from resumable_triggers.resume._record import ExternalId

log = logging.getLogger(__name__)

# Airflow abandons on_kill after this long (``asyncio.wait_for`` in the triggerer's run_trigger).
_ON_KILL_TIMEOUT_SECONDS = conf.getfloat("triggerer", "on_kill_timeout", fallback=30.0)


class EventOutcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The trigger gave up watching (error budget spent); the job itself may be fine.
    WATCH_ERROR = "watch_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent:
    """The one event a resumable trigger fires. Subclasses add their system's fields."""

    outcome: EventOutcome
    external_id: ExternalId
    state: str
    message: str = ""
    url: str | None = None

    @staticmethod
    def outcome_of(status: JobStatus) -> EventOutcome:
        return EventOutcome.SUCCEEDED if status.phase is JobPhase.SUCCEEDED else EventOutcome.FAILED

    def to_payload(self) -> dict[str, Any]:
        # Through JSON once, so tuples become lists and nothing non-JSON can reach Airflow's database.
        payload: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(self)))
        payload["outcome"] = self.outcome.value
        return payload

    @classmethod
    def from_payload(cls: type[EventT], payload: Mapping[str, Any]) -> EventT:
        """Rebuild the event; unknown keys are ignored so an older worker can read a newer trigger's event."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in payload.items() if k in names}
        values["outcome"] = EventOutcome(values["outcome"])
        return cls(**cls._decode_fields(values))

    @classmethod
    def _decode_fields(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Hook for subclasses whose fields need rebuilding from JSON (nested dataclasses)."""
        return values


EventT = TypeVar("EventT", bound=JobEvent)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchArgs:
    """Trigger kwargs every resumable trigger has. Plain numbers only: they are stored as JSON."""

    external_id: ExternalId
    poll_interval_seconds: float = 30.0
    cancel_on_kill: bool = True
    # How long the watch may go without one successful observation before it gives up and hands the
    # task back to the worker (which reconnects on retry). Transient errors inside it are absorbed.
    error_budget_seconds: float = 1800.0

    def __post_init__(self) -> None:
        if self.poll_interval_seconds <= 0:
            raise ValueError(f"poll_interval_seconds must be > 0, got {self.poll_interval_seconds!r}")
        if self.error_budget_seconds < 0:
            raise ValueError(f"error_budget_seconds must be >= 0, got {self.error_budget_seconds!r}")


ArgsT = TypeVar("ArgsT", bound=WatchArgs)


class ResumableJobTrigger(BaseTrigger, Generic[ArgsT]):
    """Base class: subclasses set ``Args``, ``classpath`` and implement observe/cancel/terminal_event.

    Generic over the kwargs dataclass, so ``self.args`` has the subclass's own fields::

        class MyTrigger(ResumableJobTrigger[MyArgs]):
            Args = MyArgs
    """

    # A ClassVar cannot hold a type variable; the default serves triggers that add no kwargs.
    Args: type[ArgsT] = WatchArgs  # type: ignore[assignment]
    # Stored in Airflow's database for every deferred task: renaming it orphans them. Pinned by tests.
    classpath: ClassVar[str]
    # The errors a watch reports instead of crashing (anything else is a bug and propagates). Of these,
    # ``is_transient`` picks the ones worth waiting out within the error budget; the rest end the
    # watch at once with a WATCH_ERROR that names them.
    watch_errors: ClassVar[tuple[type[Exception], ...]] = (OSError, asyncio.TimeoutError)

    @staticmethod
    def is_transient(error: Exception) -> bool:
        """Network trouble, throttling, a flaky remote: True. Subclasses use their client's own predicate."""
        return True

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, **kwargs: Any) -> None:
        """``kwargs`` are the stored trigger kwargs (``Args``); ``clock`` and ``sleep`` are test seams,
        never serialized: Airflow rebuilds the trigger from ``kwargs`` alone."""
        super().__init__()
        self.args = self.Args(**kwargs)
        self._clock = clock
        self._sleep = sleep

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self.classpath, dataclasses.asdict(self.args)

    def observe(self) -> AsyncIterator[JobStatus]:
        """Yield the job's status whenever it may have changed (at least once per poll interval)."""
        raise NotImplementedError

    async def cancel(self) -> None:
        raise NotImplementedError

    async def terminal_event(self, status: JobStatus) -> JobEvent:
        """Build the event for a finished job (a subclass may fetch error details here)."""
        return JobEvent(
            outcome=JobEvent.outcome_of(status),
            external_id=self.args.external_id,
            state=status.state,
            message=status.message,
            url=status.url,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._watch()
        yield TriggerEvent(event.to_payload())

    async def _watch(self) -> JobEvent:
        last_state: str | None = None
        last_success = self._clock()
        failures = 0
        while True:
            try:
                async for status in self.observe():
                    last_success, failures = self._clock(), 0
                    if status.state != last_state:
                        log.info(
                            "job %s is %s%s", self.args.external_id, status.state, _url_suffix(status.url)
                        )
                        last_state = status.state
                    if status.phase is not JobPhase.ACTIVE:
                        return await self.terminal_event(status)
            except self.watch_errors as exc:
                if not self.is_transient(exc):
                    log.error("stopped watching job %s: %s (not retried)", self.args.external_id, exc)
                    return JobEvent(
                        outcome=EventOutcome.WATCH_ERROR,
                        external_id=self.args.external_id,
                        state=last_state or "UNKNOWN",
                        message=f"permanent error, not retried: {exc}",
                    )
                failures += 1
                spent = self._clock() - last_success
                if spent >= self.args.error_budget_seconds:
                    log.error(
                        "giving up watching job %s after %.0f s without a successful poll: %s",
                        self.args.external_id,
                        spent,
                        exc,
                    )
                    return JobEvent(
                        outcome=EventOutcome.WATCH_ERROR,
                        external_id=self.args.external_id,
                        state=last_state or "UNKNOWN",
                        message=f"watch gave up after {spent:.0f} s of errors: {exc}",
                    )
                delay = min(self.args.poll_interval_seconds, 2.0**failures)
                log.warning(
                    "polling job %s failed (%s); retrying in %.0f s", self.args.external_id, exc, delay
                )
                await self._sleep(delay)

    async def status(self) -> JobStatus:
        """One fresh observation of the job (``on_kill`` reads it before deciding anything).

        By default the first status ``observe()`` yields; a subclass with a cheaper one-shot read
        overrides this."""
        updates = self.observe()
        try:
            return await anext(aiter(updates))
        finally:
            await updates.aclose()  # type: ignore[attr-defined]

    async def read_task_view(self) -> TaskView:
        """How Airflow sees this trigger's task now, through the triggerer's supervisor."""
        return await airflow_task_view(self.task_instance)

    def _watching_try(self) -> int | None:
        # The triggerer sets ``task_instance`` on the triggers it runs; a trigger driven by hand (tests,
        # ``run_trigger`` elsewhere) has none, and then every marker counts.
        try_number = getattr(getattr(self, "task_instance", None), "try_number", None)
        return try_number if isinstance(try_number, int) else None

    async def on_kill(self) -> None:
        """Cancel the job only when a user stopped the task, decided from facts (see ``_kill``).

        Airflow 3.3 calls this for user actions *and* for triggers reassigned to another triggerer,
        so its message proves nothing. The decision looks again while a try is starting or resuming,
        for at most two thirds of ``[triggerer] on_kill_timeout`` (the rest is left for the cancel
        itself); when it never settles the job keeps running and an error names it.

        Airflow repeats its cancel on every loop of the triggerer (about once a second) until the
        trigger ends, and each one lands in whatever ``on_kill`` awaits: the decision runs shielded,
        and ``on_kill`` waits for it through those repeats (it is bounded by its own deadline).
        """
        decision = asyncio.ensure_future(self._kill())
        while not decision.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(decision)
        decision.result()

    async def user_set_state(self, state: str) -> None:
        """A user set the task to ``state`` through Airflow's API (mark failed, mark success), whether
        or not a triggerer runs this trigger: the same decision as ``on_kill`` (see ``_listener``)."""

        async def view() -> TaskView:
            return TaskView(state=state, marker=None)  # the marker only speaks for handed-on states

        await self._kill(view)

    async def _kill(self, read_view: Callable[[], Awaitable[TaskView]] | None = None) -> None:
        external_id = self.args.external_id
        if not self.args.cancel_on_kill:
            log.info("task was acted on; leaving job %s running (cancel_on_kill=False)", external_id)
            return
        deadline = self._clock() + _ON_KILL_TIMEOUT_SECONDS * 2 / 3
        job_active: bool | None = None
        url = self.job_url
        try:
            status = await self.status()
            job_active, url = status.cancellable, status.url or url
        except self.watch_errors as exc:
            log.warning("could not read the status of job %s before deciding to cancel: %s", external_id, exc)
        while True:
            try:
                view: TaskView | None = await (read_view or self.read_task_view)()
            except Exception as exc:  # noqa: BLE001 - any doubt must keep a healthy job running
                log.warning("could not read the task's state: %s", exc)
                view = None
            verdict = kill_verdict(
                external_id=external_id, job_active=job_active, view=view, watching_try=self._watching_try()
            )
            if verdict.kind is not KillVerdict.LOOK_AGAIN or self._clock() >= deadline:
                break
            await self._sleep(1.0)
        stats.incr("resumable_job.on_kill", tags={"verdict": verdict.kind.value})
        if verdict.kind is KillVerdict.CANCEL:
            log.info("cancelling job %s: %s", external_id, verdict.reason)
            await self.cancel()
        elif verdict.kind is KillVerdict.KEEP:
            log.info("not cancelling job %s, which keeps running: %s", external_id, verdict.reason)
        else:
            log.error(
                "not cancelling job %s%s although Airflow asked to: %s. If a user stopped the task, "
                "cancel the job by hand.",
                external_id,
                _url_suffix(url),
                verdict.reason,
            )

    @property
    def job_url(self) -> str | None:
        """The job's page, when the kwargs know it (for log lines written before any status read)."""
        return None


async def airflow_task_view(ti: Any) -> TaskView:
    """The current state and watch marker of trigger's task instance, read through the triggerer.

    ``get_task_states`` is a sync call into the supervisor: run in a thread, it needs no greenback
    portal (a triggerer may run without one). The marker is read with the SDK's async XCom call.
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    from airflow.sdk.execution_time.xcom import XCom

    if ti is None:
        raise RuntimeError("the trigger has no task instance (it does not run in a triggerer)")
    map_index = ti.map_index if ti.map_index is not None else -1
    states = await asyncio.to_thread(
        RuntimeTaskInstance.get_task_states,
        dag_id=ti.dag_id,
        task_ids=[ti.task_id],
        run_ids=[ti.run_id],
        map_index=map_index,
    )
    key = task_state_key(ti.task_id, map_index)
    run_states = states.get(ti.run_id, {})
    if key not in run_states:
        raise LookupError(f"Airflow knows no task instance {ti.dag_id}/{ti.run_id}/{key}")
    marker = await XCom.aget_one(
        key=WATCH_MARKER_KEY, dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=map_index
    )
    state = run_states[key]
    return TaskView(state=None if state is None else str(state), marker=WatchMarker.from_xcom(marker))


def _url_suffix(url: str | None) -> str:
    return f" ({url})" if url else ""

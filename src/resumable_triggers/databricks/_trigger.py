"""The Databricks trigger: watch one run through the process-wide shared client, fire one typed event."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from resumable_triggers._clock import Clock, Sleep
from resumable_triggers.databricks._connection import aworkspace_for
from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    DatabricksError,
    LifeCycleState,
    Run,
    RunNotFound,
    is_transient,
    shared_client,
    watch_run,
)
from resumable_triggers.resume import JobEvent, JobPhase, JobStatus, ResumableJobTrigger, WatchArgs


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabricksRunArgs(WatchArgs):
    """The trigger's kwargs, exactly as stored in Airflow's database. No secrets: only a connection id."""

    databricks_conn_id: str | None = "databricks_default"
    run_page_url: str | None = None
    # Requests per second for the whole workspace, shared by every trigger of this triggerer.
    requests_per_second: float = ClientSettings().requests_per_second


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailure:
    """Why one task of the run failed (from ``runs/get-output``)."""

    task_key: str
    run_id: int
    state: str
    error: str | None = None
    error_trace: str | None = None
    run_page_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent(JobEvent):
    """The terminal event of a Databricks run, as the task receives it."""

    life_cycle_state: str = ""
    result_state: str | None = None
    run_duration_seconds: float | None = None
    task_failures: tuple[TaskFailure, ...] = ()

    @classmethod
    def _decode_fields(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["task_failures"] = tuple(TaskFailure(**f) for f in values.get("task_failures") or ())
        return values


def run_status(run: Run) -> JobStatus:
    """Map a run snapshot onto the framework's phases. Unknown (newer) states keep the watch going."""
    state = run.state
    if not state.is_terminal:
        life_cycle = state.life_cycle_state
        ending = life_cycle is LifeCycleState.TERMINATING  # cancelled, or cleaning up
        return JobStatus(JobPhase.ACTIVE, life_cycle.value, state.state_message, run.run_page_url, ending)
    result = state.result_state.value if state.result_state is not None else "NONE"
    phase = JobPhase.SUCCEEDED if state.is_successful else JobPhase.FAILED
    return JobStatus(phase, f"{state.life_cycle_state.value}/{result}", state.state_message, run.run_page_url)


async def read_status(client: DatabricksClient, run_id: int) -> JobStatus:
    """One ``runs/get``, as a status; a run the workspace no longer knows is GONE."""
    try:
        return run_status(await client.get_run(run_id))
    except RunNotFound as exc:
        return JobStatus(JobPhase.GONE, "GONE", str(exc))


async def run_event(client: DatabricksClient, run: Run, status: JobStatus) -> RunEvent:
    """The event for a finished run; failed runs carry each failed task's error from get-output."""
    failures: tuple[TaskFailure, ...] = ()
    if status.phase is JobPhase.FAILED and run.tasks:
        failures = tuple(
            TaskFailure(
                task_key=e.task_key,
                run_id=e.run_id,
                state=e.state.life_cycle_state.value,
                error=e.error,
                error_trace=e.error_trace,
                run_page_url=e.run_page_url,
            )
            for e in await client.failed_task_errors(run)
        )
    message = status.message
    first_error = failures[0].error if failures else None
    if first_error and first_error not in message:
        message = f"{message}; task {failures[0].task_key}: {first_error}".lstrip("; ")
    duration = run.run_duration_ms or sum(
        d or 0 for d in (run.setup_duration_ms, run.execution_duration_ms, run.cleanup_duration_ms)
    )
    return RunEvent(
        outcome=RunEvent.outcome_of(status),
        external_id=run.run_id,
        state=status.state,
        message=message,
        url=run.run_page_url,
        life_cycle_state=run.state.life_cycle_state.value,
        result_state=None if run.state.result_state is None else run.state.result_state.value,
        run_duration_seconds=duration / 1000 if duration else None,
        task_failures=failures,
    )


class DatabricksRunTrigger(ResumableJobTrigger[DatabricksRunArgs]):
    """Watches one Databricks run from the triggerer until it is terminal.

    Every instance in a triggerer shares one HTTP session and one request budget per workspace, so a
    restart with thousands of deferred tasks cannot flood the workspace. Transient errors and
    throttling are absorbed within ``error_budget_seconds``; permanent ones (rejected credentials,
    a 400, an untrusted certificate) end the watch at once with a WATCH_ERROR naming status,
    error_code and endpoint; a user's kill cancels the run when ``cancel_on_kill``; triggerer
    shutdowns, restarts and reassignments to another triggerer never do (see
    ``resumable_triggers.resume._kill``).
    """

    Args = DatabricksRunArgs
    classpath = "resumable_triggers.databricks.DatabricksRunTrigger"
    watch_errors = (DatabricksError, OSError, asyncio.TimeoutError)
    # The client's own classification: a 403, a 400 or a TLS failure ends the watch at once.
    is_transient = staticmethod(is_transient)

    def _client(self) -> AbstractAsyncContextManager[DatabricksClient]:
        return _lease(self.args, clock=self._clock, sleep=self._sleep)

    async def observe(self) -> AsyncIterator[JobStatus]:
        # Through the workspace's shared watcher: thousands of triggers cost one runs/list page per
        # 25 active runs per interval, plus one runs/get for each run that leaves the active set.
        # The watcher holds the shared session open while it polls, so this trigger lets its own
        # lease go at once: a triggerer waits on ten thousand of these.
        async with self._client() as client:
            watch = watch_run(
                client,
                int(self.args.external_id),
                interval_seconds=self.args.poll_interval_seconds,
                lease=self._client,
            )
        async with watch as updates:
            try:
                async for run in updates:
                    status = run_status(run)
                    if run.state.is_terminal:
                        self._last_run = run  # for terminal_event
                    # Not kept while suspended below: ten thousand active runs' snapshots would cost
                    # the triggerer over half a KiB each.
                    del run
                    yield status
            except RunNotFound as exc:
                yield JobStatus(JobPhase.GONE, "GONE", str(exc), self.args.run_page_url)

    async def terminal_event(self, status: JobStatus) -> JobEvent:
        run: Run | None = getattr(self, "_last_run", None)
        if run is None or status.phase is JobPhase.GONE:
            return dataclasses.replace(
                await super().terminal_event(status), url=status.url or self.args.run_page_url
            )
        async with self._client() as client:
            return await run_event(client, run, status)

    async def status(self) -> JobStatus:
        async with self._client() as client:
            status = await read_status(client, int(self.args.external_id))
        return dataclasses.replace(status, url=status.url or self.args.run_page_url)

    @property
    def job_url(self) -> str | None:
        return self.args.run_page_url

    async def cancel(self) -> None:
        async with self._client() as client:
            await client.cancel_run(int(self.args.external_id))


@asynccontextmanager
async def _lease(args: DatabricksRunArgs, *, clock: Clock, sleep: Sleep) -> AsyncIterator[DatabricksClient]:
    """``shared_client`` for the workspace of a trigger's connection (looked up once per loop).

    The trigger's ``clock`` and ``sleep`` reach the client (and its watcher) only when this lease
    creates it: in a triggerer every trigger passes the real ones."""
    workspace = await aworkspace_for(args.databricks_conn_id)
    settings = _settings(args.requests_per_second, args.error_budget_seconds, workspace_share())
    async with shared_client(
        workspace.host, workspace.headers, settings=settings, clock=clock, sleep=sleep
    ) as client:
        yield client


WORKSPACE_SHARE_OPTION = ("resumable_triggers", "workspace_share")
"""``[resumable_triggers] workspace_share``: the fraction of a trigger's ``requests_per_second`` (the
workspace's whole allowance) that one triggerer process may use. With N triggerers set it to 1/N:
each then paces itself at R/N requests a second with a burst of ceil(20/N), so the workspace sees at
most R a second on average and about 20 at once, however the triggers are spread. Default 1.0."""


def workspace_share() -> float:
    """The configured share, validated: a typo must not silently multiply the load on a workspace."""
    from airflow.sdk import conf

    section, key = WORKSPACE_SHARE_OPTION
    raw = conf.get(section, key, fallback="1.0")
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not 0 < share <= 1:
        raise ValueError(
            f"[{section}] {key} must be a number in (0, 1], e.g. 0.5 for two triggerers; got {raw!r}"
        )
    return share


@functools.lru_cache(maxsize=64)
def _settings(requests_per_second: float, error_budget_seconds: float, share: float = 1.0) -> ClientSettings:
    # Cached: every trigger leases twice (watch, event), and ten thousand triggers share a handful
    # of argument combinations. One request may not retry for longer than the whole watch is
    # allowed to go without an answer.
    default = ClientSettings()
    return ClientSettings(
        requests_per_second=requests_per_second * share,
        burst=max(1, math.ceil(default.burst * share)),
        retry_budget_seconds=min(default.retry_budget_seconds, error_budget_seconds),
    )

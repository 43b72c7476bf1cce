"""Typed, immutable snapshots of Jobs API 2.2 payloads.

Remote states are enums with an ``UNKNOWN`` member: Databricks adds states over time, and a
poller that crashes on a value newer than the library would strand the task. ``from_api`` reads
only what it needs and tolerates missing keys, so an extra or absent field never breaks parsing.
Times are epoch milliseconds (``*_ms``); ``None`` where the API sends 0 or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "LifeCycleState",
    "RepairAttempt",
    "ResultState",
    "Run",
    "RunOutput",
    "RunState",
    "RunStatus",
    "RunStatusState",
    "RunType",
    "RunsPage",
    "TaskError",
    "TaskRun",
    "TerminationDetails",
]


class _TolerantEnum(str, Enum):
    """A str enum whose lookup of an unknown value yields ``UNKNOWN`` instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return cls["UNKNOWN"]


class LifeCycleState(_TolerantEnum):
    """``state.life_cycle_state`` of a run or task run."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    SKIPPED = "SKIPPED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    BLOCKED = "BLOCKED"
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"
    UNKNOWN = "UNKNOWN"


_TERMINAL_LIFE_CYCLE_STATES = frozenset(
    {LifeCycleState.TERMINATED, LifeCycleState.SKIPPED, LifeCycleState.INTERNAL_ERROR}
)


class ResultState(_TolerantEnum):
    """``state.result_state``: only present once the run is terminal."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    MAXIMUM_CONCURRENT_RUNS_REACHED = "MAXIMUM_CONCURRENT_RUNS_REACHED"
    EXCLUDED = "EXCLUDED"
    SUCCESS_WITH_FAILURES = "SUCCESS_WITH_FAILURES"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"
    DISABLED = "DISABLED"
    UNKNOWN = "UNKNOWN"


class RunStatusState(_TolerantEnum):
    """``status.state`` (the newer status object); only ``TERMINATED`` is terminal."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    BLOCKED = "BLOCKED"
    WAITING = "WAITING"
    UNKNOWN = "UNKNOWN"


class RunType(_TolerantEnum):
    JOB_RUN = "JOB_RUN"
    WORKFLOW_RUN = "WORKFLOW_RUN"
    SUBMIT_RUN = "SUBMIT_RUN"
    UNKNOWN = "UNKNOWN"


def _ms(payload: Mapping[str, Any], key: str) -> int | None:
    # The API reports "not yet" as 0 (end_time of a running run); None says that without a magic value.
    value = payload.get(key)
    return int(value) if value else None


def _opt_int(payload: Mapping[str, Any], key: str) -> int | None:
    value = payload.get(key)
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class RunState:
    """The classic ``state`` object. ``result_state`` is None until the run is terminal."""

    life_cycle_state: LifeCycleState
    result_state: ResultState | None = None
    state_message: str = ""
    user_cancelled_or_timedout: bool = False

    @property
    def is_terminal(self) -> bool:
        """True once the run can no longer change. ``UNKNOWN`` counts as not terminal: keep polling."""
        return self.life_cycle_state in _TERMINAL_LIFE_CYCLE_STATES

    @property
    def is_successful(self) -> bool:
        """True only for ``SUCCESS`` (not ``SUCCESS_WITH_FAILURES``), matching the Airflow provider."""
        return self.result_state is ResultState.SUCCESS

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> RunState:
        result = payload.get("result_state")
        return cls(
            life_cycle_state=LifeCycleState(payload.get("life_cycle_state")),
            result_state=None if result is None else ResultState(result),
            state_message=payload.get("state_message") or "",
            user_cancelled_or_timedout=bool(payload.get("user_cancelled_or_timedout", False)),
        )


@dataclass(frozen=True, slots=True)
class TerminationDetails:
    code: str | None = None
    type: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunStatus:
    """The newer ``status`` object: ``termination_details`` once terminating, ``queue_reason`` if queued."""

    state: RunStatusState
    termination_details: TerminationDetails | None = None
    queue_reason: str | None = None

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> RunStatus:
        details = payload.get("termination_details")
        queue = payload.get("queue_details") or {}
        return cls(
            state=RunStatusState(payload.get("state")),
            termination_details=None
            if details is None
            else TerminationDetails(
                code=details.get("code"), type=details.get("type"), message=details.get("message") or ""
            ),
            queue_reason=queue.get("message") or queue.get("code"),
        )


def _state(payload: Mapping[str, Any]) -> RunState:
    return RunState.from_api(payload.get("state") or {})


def _status(payload: Mapping[str, Any]) -> RunStatus | None:
    status = payload.get("status")
    return None if status is None else RunStatus.from_api(status)


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One task of a run. Its ``run_id`` (not the parent's) is what ``runs/get-output`` accepts."""

    run_id: int
    task_key: str
    state: RunState
    status: RunStatus | None = None
    run_page_url: str | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    attempt_number: int = 0

    @property
    def has_failed(self) -> bool:
        """True when the task itself failed (not when it was skipped because an upstream task failed)."""
        return self.state.life_cycle_state is LifeCycleState.INTERNAL_ERROR or self.state.result_state in (
            ResultState.FAILED,
            ResultState.TIMEDOUT,
        )

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> TaskRun:
        return cls(
            run_id=int(payload["run_id"]),
            task_key=str(payload.get("task_key", "")),
            state=_state(payload),
            status=_status(payload),
            run_page_url=payload.get("run_page_url"),
            start_time_ms=_ms(payload, "start_time"),
            end_time_ms=_ms(payload, "end_time"),
            attempt_number=int(payload.get("attempt_number", 0)),
        )


@dataclass(frozen=True, slots=True)
class Run:
    """A snapshot of ``runs/get``. Durations are milliseconds as the API reports them (0 is meaningful:
    multi-task runs report ``run_duration_ms`` and leave the setup/execution/cleanup durations at 0)."""

    run_id: int
    state: RunState
    job_id: int | None = None
    run_name: str | None = None
    run_type: RunType | None = None
    run_page_url: str | None = None
    status: RunStatus | None = None
    tasks: tuple[TaskRun, ...] = ()
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    setup_duration_ms: int | None = None
    execution_duration_ms: int | None = None
    cleanup_duration_ms: int | None = None
    run_duration_ms: int | None = None
    attempt_number: int = 0
    # Only with ``runs/get?include_history=true``; empty otherwise, or for a run never repaired.
    repair_history: tuple[RepairAttempt, ...] = ()

    @property
    def repairs(self) -> tuple[RepairAttempt, ...]:
        """The accepted repairs, oldest first (the original attempt left out)."""
        return tuple(entry for entry in self.repair_history if entry.repair_id is not None)

    @property
    def latest_repair_id(self) -> int | None:
        """What ``runs/repair`` wants as ``latest_repair_id``: None until the run was repaired."""
        repairs = self.repairs
        return repairs[-1].repair_id if repairs else None

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> Run:
        """Parse one ``runs/get`` (or ``runs/list`` item) payload; ``tasks`` must already be merged."""
        run_type = payload.get("run_type")
        return cls(
            run_id=int(payload["run_id"]),
            state=_state(payload),
            job_id=_opt_int(payload, "job_id"),
            run_name=payload.get("run_name"),
            run_type=None if run_type is None else RunType(run_type),
            run_page_url=payload.get("run_page_url"),
            status=_status(payload),
            tasks=tuple(TaskRun.from_api(task) for task in payload.get("tasks") or ()),
            start_time_ms=_ms(payload, "start_time"),
            end_time_ms=_ms(payload, "end_time"),
            setup_duration_ms=_opt_int(payload, "setup_duration"),
            execution_duration_ms=_opt_int(payload, "execution_duration"),
            cleanup_duration_ms=_opt_int(payload, "cleanup_duration"),
            run_duration_ms=_opt_int(payload, "run_duration"),
            attempt_number=int(payload.get("attempt_number", 0)),
            repair_history=tuple(RepairAttempt.from_api(r) for r in payload.get("repair_history") or ()),
        )


@dataclass(frozen=True, slots=True)
class RepairAttempt:
    """One ``repair_history`` entry: the ORIGINAL attempt (``repair_id`` None) or a REPAIR."""

    repair_id: int | None
    state: RunState
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    task_run_ids: tuple[int, ...] = ()

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> RepairAttempt:
        is_repair = payload.get("type", "REPAIR") != "ORIGINAL"
        return cls(
            repair_id=_opt_int(payload, "id") if is_repair else None,
            state=_state(payload),
            start_time_ms=_ms(payload, "start_time"),
            end_time_ms=_ms(payload, "end_time"),
            task_run_ids=tuple(int(i) for i in payload.get("task_run_ids") or ()),
        )


@dataclass(frozen=True, slots=True)
class RunOutput:
    """``runs/get-output`` of one task run. ``logs`` holds the tail of a Python/JAR task's stdout."""

    run_id: int
    error: str | None = None
    error_trace: str | None = None
    notebook_result: str | None = None
    notebook_result_truncated: bool = False
    logs: str | None = None
    logs_truncated: bool = False

    @classmethod
    def from_api(cls, payload: Mapping[str, Any], *, run_id: int) -> RunOutput:
        notebook = payload.get("notebook_output") or {}
        return cls(
            run_id=run_id,
            error=payload.get("error"),
            error_trace=payload.get("error_trace"),
            notebook_result=notebook.get("result"),
            notebook_result_truncated=bool(notebook.get("truncated", False)),
            logs=payload.get("logs"),
            logs_truncated=bool(payload.get("logs_truncated", False)),
        )


@dataclass(frozen=True, slots=True)
class RunsPage:
    """One page of ``runs/list``, newest first. Pass ``next_page_token`` back to get the next page."""

    runs: tuple[Run, ...]
    has_more: bool
    next_page_token: str | None = None

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> RunsPage:
        return cls(
            runs=tuple(Run.from_api(run) for run in payload.get("runs") or ()),
            has_more=bool(payload.get("has_more", False)),
            next_page_token=payload.get("next_page_token") or None,
        )


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why one task of a run failed, from its ``runs/get-output`` (``error`` is the one-line reason)."""

    task_key: str
    run_id: int
    state: RunState
    error: str | None = None
    error_trace: str | None = None
    run_page_url: str | None = None

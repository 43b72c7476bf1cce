"""Run records, and their state computed lazily from the clock.

Nothing ticks: an ``Attempt`` stores the instants at which it enters each life-cycle phase, and the
state is derived from ``now`` whenever someone reads it. That keeps 10,000 runs free of timers and
makes a virtual clock (``ManualClock``) drive every run at once.

A run has one attempt per submission or repair; each task points at the attempt it last ran in, so a
repair re-runs some tasks while the others keep their finished attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Share of an attempt's duration spent setting up (PENDING) and cleaning up (TERMINATING).
SETUP_SHARE = 0.1
CLEANUP_SHARE = 0.1

ACTIVE_STATES = frozenset({"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY"})

# How bad an outcome is, for a parent whose tasks ended differently: the worst one wins. SKIPPED is
# below SUCCESS because a run is only SKIPPED when all of its tasks were.
_SEVERITY = {
    "INTERNAL_ERROR": 0,
    "TIMEDOUT": 1,
    "CANCELED": 2,
    "FAILED": 3,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": 4,
    "UPSTREAM_FAILED": 5,
    "UPSTREAM_CANCELED": 6,
    "DISABLED": 7,
    "SUCCESS_WITH_FAILURES": 8,
    "EXCLUDED": 9,
    "SUCCESS": 10,
    "SKIPPED": 11,
}

# outcome -> (termination_details.code, termination_details.type)
_TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    # The SDK documents CANCELED as "canceled by the platform, e.g. the maximum duration was exceeded".
    "TIMEDOUT": ("CANCELED", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
    "INTERNAL_ERROR": ("INTERNAL_ERROR", "INTERNAL_ERROR"),
    "SKIPPED": ("SKIPPED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
    "SUCCESS_WITH_FAILURES": ("SUCCESS_WITH_FAILURES", "SUCCESS"),
    "DISABLED": ("DISABLED", "CLIENT_ERROR"),
}


@dataclass(slots=True)
class Attempt:
    """One submission or repair: the clock instants (seconds) at which each phase starts."""

    start: float
    queued_until: float
    running_at: float
    terminating_at: float
    end: float
    cancelled: bool = False
    timed_out: bool = False
    repair_id: int | None = None

    @classmethod
    def schedule(cls, start: float, duration: float, *, queued: bool = False, timeout: float = 0) -> Attempt:
        attempt = cls(start, start, start, start, start)
        attempt.retime(start, start, duration, timeout, queued=queued)
        return attempt

    def retime(self, now: float, start: float, duration: float, timeout: float, *, queued: bool) -> None:
        """Aim to end ``duration`` s after ``start``; boundaries already passed stay where they were."""
        setup, cleanup = duration * SETUP_SHARE, duration * CLEANUP_SHARE
        ideal = [
            start + (setup / 2 if queued else 0.0),
            start + setup,
            start + duration - cleanup,
            start + duration,
        ]
        self.timed_out = False
        if timeout > 0 and start + timeout < ideal[2]:
            ideal[2], ideal[3] = start + timeout, start + timeout + cleanup
            ideal[0], ideal[1] = min(ideal[0], ideal[2]), min(ideal[1], ideal[2])
            self.timed_out = True
        current = [self.queued_until, self.running_at, self.terminating_at, self.end]
        floor = now
        for index, (old, new) in enumerate(zip(current, ideal, strict=True)):
            if old <= now and now > start:
                current[index] = old
                continue
            current[index] = max(new, floor)
            floor = current[index]
        self.queued_until, self.running_at, self.terminating_at, self.end = current

    def cancel(self, now: float, cleanup_seconds: float) -> bool:
        """Start terminating now; returns False when the attempt was already terminating or done."""
        if now >= self.terminating_at:
            return False
        self.cancelled, self.timed_out = True, False
        self.queued_until = min(self.queued_until, now)
        self.running_at = min(self.running_at, now)
        self.terminating_at = now
        self.end = now + cleanup_seconds
        return True

    def finish(self, now: float) -> None:
        self.cancelled = self.timed_out = False
        self.queued_until = min(self.queued_until, now)
        self.running_at = min(self.running_at, now)
        self.terminating_at = min(self.terminating_at, now)
        self.end = min(self.end, now)

    def phase(self, now: float) -> str:
        if now >= self.end:
            return "DONE"
        if now >= self.terminating_at:
            return "TERMINATING"
        if now >= self.running_at:
            return "RUNNING"
        if now >= self.queued_until:
            return "PENDING"
        return "QUEUED"


@dataclass(slots=True)
class TaskRecord:
    task_key: str
    run_id: int
    spec: dict[str, Any]
    attempt_index: int
    result_state: str = "SUCCESS"
    error: str | None = None
    output: str | None = None
    attempt_number: int = 0


@dataclass(slots=True)
class RunRecord:
    run_id: int
    job_id: int
    run_name: str
    run_type: str
    creator_user_name: str
    attempts: list[Attempt]
    tasks: list[TaskRecord]
    timeout_seconds: float = 0
    queued: bool = False
    trigger: str = "ONE_TIME"
    idempotency_token: str | None = None
    job_clusters: list[Any] = field(default_factory=list)
    job_parameters: list[Any] = field(default_factory=list)
    # Task runs replaced by a repair: still readable through runs/get-output and runs/get.
    replaced_tasks: list[TaskRecord] = field(default_factory=list)
    # Emulator settings for this run, remembered so a repair or a restart keeps them.
    duration_seconds: float = 0.0

    @property
    def attempt(self) -> Attempt:
        return self.attempts[-1]


def effective_outcome(task: TaskRecord, attempt: Attempt) -> str:
    if attempt.cancelled:
        return "CANCELED"
    if attempt.timed_out:
        return "TIMEDOUT"
    return task.result_state


def parent_outcome(run: RunRecord) -> tuple[str, TaskRecord | None]:
    """The worst outcome among the run's tasks, and the task that has it."""
    worst, culprit = "SKIPPED" if run.tasks else "SUCCESS", None
    for task in run.tasks:
        outcome = effective_outcome(task, run.attempts[task.attempt_index])
        if _SEVERITY.get(outcome, 3) < _SEVERITY.get(worst, 3):
            worst, culprit = outcome, task
    return worst, culprit


def is_active(run: RunRecord, now: float) -> bool:
    return now < run.attempt.end


def _state_message(phase: str, outcome: str, error: str | None, task_key: str | None) -> str:
    if phase == "QUEUED":
        return "Queued due to reaching maximum concurrent runs."
    if phase == "PENDING":
        return "Waiting for cluster"
    if phase == "RUNNING":
        return "In run"
    if outcome == "SUCCESS":
        return ""
    if outcome == "CANCELED":
        return "Run cancelled."
    if outcome == "TIMEDOUT":
        return "Run timed out."
    if outcome == "SKIPPED":
        return "An active run for this job already exists."
    message = error or "Workload failed, see run output for details"
    if task_key is not None:
        return f"Task {task_key} failed with message: {message}."
    return message


def state_and_status(
    attempt: Attempt, outcome: str, error: str | None, now: float, task_key: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The deprecated ``state`` object and the v2 ``status`` object, kept consistent."""
    phase = attempt.phase(now)
    message = _state_message(phase, outcome, error, task_key)
    status: dict[str, Any]
    if phase in ("QUEUED", "PENDING", "RUNNING"):
        state = {"life_cycle_state": phase, "state_message": message, "user_cancelled_or_timedout": False}
        status = {"state": phase}
        if phase == "QUEUED":
            status["queue_details"] = {"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": message}
        return state, status
    code, kind = _TERMINATION.get(outcome, ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
    details = {"code": code, "type": kind, "message": message}
    stopped = outcome in ("CANCELED", "TIMEDOUT")
    if phase == "TERMINATING":
        state = {
            "life_cycle_state": "TERMINATING",
            "state_message": message,
            "user_cancelled_or_timedout": False,
        }
        return state, {"state": "TERMINATING", "termination_details": details}
    if outcome in ("INTERNAL_ERROR", "SKIPPED"):
        state = {"life_cycle_state": outcome, "state_message": message, "user_cancelled_or_timedout": False}
        if outcome == "INTERNAL_ERROR":
            state["result_state"] = "FAILED"
    else:
        state = {
            "life_cycle_state": "TERMINATED",
            "result_state": outcome,
            "state_message": message,
            "user_cancelled_or_timedout": stopped,
        }
    return state, {"state": "TERMINATED", "termination_details": details}


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def start_ms(run: RunRecord) -> int:
    """The run's ``start_time`` as every reply shows it. runs/list sorts, pages and filters by this
    same number, so a client that bounds ``start_time_from/to`` by a start time it was shown gets
    that run back (truncating here while replies round lost a run at the window's edge)."""
    return _ms(run.attempts[0].start)


def _durations(attempt: Attempt, now: float) -> dict[str, int]:
    if now < attempt.end:
        return {"setup_duration": 0, "execution_duration": 0, "cleanup_duration": 0, "end_time": 0}
    return {
        "setup_duration": _ms(attempt.running_at - attempt.start),
        "execution_duration": _ms(attempt.terminating_at - attempt.running_at),
        "cleanup_duration": _ms(attempt.end - attempt.terminating_at),
        "end_time": _ms(attempt.end),
    }


def render_task(run: RunRecord, task: TaskRecord, now: float, page_url: str) -> dict[str, Any]:
    attempt = run.attempts[task.attempt_index]
    outcome = effective_outcome(task, attempt)
    state, status = state_and_status(attempt, outcome, task.error, now)
    body: dict[str, Any] = dict(task.spec)
    body.update(
        run_id=task.run_id,
        task_key=task.task_key,
        state=state,
        status=status,
        attempt_number=task.attempt_number,
        start_time=_ms(attempt.start),
        run_page_url=page_url.format(job_id=run.job_id, run_id=task.run_id),
        queue_duration=0,
        run_if=task.spec.get("run_if", "ALL_SUCCESS"),
    )
    body.update(_durations(attempt, now))
    return body


def render_run(
    run: RunRecord, now: float, page_url: str, *, with_tasks: bool = True, with_history: bool = False
) -> dict[str, Any]:
    """The ``runs/get`` JSON of a run at clock time ``now`` (unpaged)."""
    attempt = run.attempt
    outcome, culprit = parent_outcome(run)
    state, status = state_and_status(
        attempt,
        outcome,
        culprit.error if culprit else None,
        now,
        task_key=culprit.task_key if culprit and len(run.tasks) > 1 else None,
    )
    first = run.attempts[0]
    body: dict[str, Any] = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "creator_user_name": run.creator_user_name,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": run.trigger,
        "format": "MULTI_TASK",
        "attempt_number": 0,
        "state": state,
        "status": status,
        "start_time": _ms(first.start),
        "run_page_url": page_url.format(job_id=run.job_id, run_id=run.run_id),
        "queue_duration": 0,
    }
    body.update(_durations(attempt, now))
    body["run_duration"] = body["end_time"] - body["start_time"] if body["end_time"] else 0
    if len(run.tasks) > 1:
        # Multi-task runs report run_duration only.
        body.update(setup_duration=0, execution_duration=0, cleanup_duration=0)
    if with_tasks:
        body["tasks"] = [render_task(run, task, now, page_url) for task in run.tasks]
        if run.job_clusters:
            body["job_clusters"] = run.job_clusters
    if run.job_parameters:
        body["job_parameters"] = run.job_parameters
    if with_history and len(run.attempts) > 1:
        body["repair_history"] = repair_history(run, now)
    return body


def repair_history(run: RunRecord, now: float) -> list[dict[str, Any]]:
    entries = []
    for index, attempt in enumerate(run.attempts):
        tasks = [t for t in [*run.replaced_tasks, *run.tasks] if t.attempt_index == index]
        worst = "SUCCESS"
        for task in tasks:
            outcome = effective_outcome(task, attempt)
            if _SEVERITY.get(outcome, 3) < _SEVERITY.get(worst, 3):
                worst = outcome
        state, status = state_and_status(attempt, worst, None, now)
        entry: dict[str, Any] = {
            "type": "ORIGINAL" if index == 0 else "REPAIR",
            "start_time": _ms(attempt.start),
            "end_time": _ms(attempt.end) if now >= attempt.end else 0,
            "state": state,
            "status": status,
            "task_run_ids": [t.run_id for t in tasks],
        }
        if attempt.repair_id is not None:
            entry["id"] = attempt.repair_id
        entries.append(entry)
    return entries

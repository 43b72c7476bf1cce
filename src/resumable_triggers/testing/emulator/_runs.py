"""Run records, and their state computed lazily from the clock.

Nothing ticks: an ``Attempt`` stores the instants at which it enters each life-cycle phase, and the
state is derived from ``now`` whenever someone reads it. That keeps 10,000 runs free of timers and
makes a virtual clock (``ManualClock``) drive every run at once.

A run has one attempt per submission or repair; each task points at the attempt it last ran in, so a
repair re-runs some tasks while the others keep their finished attempt. A task with retry fields may
run several times inside one run attempt (see `_retries`): each of its attempts is a ``TaskRecord``
with a span of the run attempt (``offset_seconds``, ``length_seconds``); the latest is in
``RunRecord.tasks``, the earlier ones in ``replaced_tasks``, beside the task runs a repair replaced.
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
SEVERITY = {
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
    # Where this task attempt lies in its run attempt: from ``offset_seconds`` after the run attempt's
    # start, for ``length_seconds`` (None: to the run attempt's end). Retried tasks have several.
    offset_seconds: float = 0.0
    length_seconds: float | None = None
    # emulator.fail_attempts: attempts numbered below this end FAILED; remembered for repairs.
    fail_attempts: int = 0


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


def whole_number(value: Any) -> int | None:
    """An integer field as the Jobs API takes it: a JSON number or a numeric string (the provider
    sends some numbers as strings); None when absent or not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().removeprefix("-")
        if text.isascii() and text.isdigit():
            return int(value.strip())
    return None


def retry_interval_seconds(spec: dict[str, Any]) -> float:
    """A task's ``min_retry_interval_millis`` in seconds (0 when absent or not a number)."""
    millis = whole_number(spec.get("min_retry_interval_millis"))
    return millis / 1000 if millis is not None and millis > 0 else 0.0


def task_timeout_seconds(spec: dict[str, Any]) -> float:
    """A task's own ``timeout_seconds`` (0, no timeout, when absent or not a number)."""
    timeout = whole_number(spec.get("timeout_seconds"))
    return timeout if timeout is not None and timeout > 0 else 0


# Float rounding between a run attempt's end and its last task attempt's, planned to be equal.
_SLACK_SECONDS = 1e-6


def task_attempt(run: RunRecord, task: TaskRecord) -> Attempt:
    """The clock instants of one task attempt: its run attempt's, or (a retried task) its own span of
    it, cut where the run attempt was cut short (cancelled, finished, timed out)."""
    attempt = run.attempts[task.attempt_index]
    if task.length_seconds is None and not task.offset_seconds:
        return attempt
    start = attempt.start + task.offset_seconds
    if task.length_seconds is None:
        bounds = (attempt.queued_until, attempt.running_at, attempt.terminating_at, attempt.end)
        queued_until, running_at, terminating_at, end = (max(start, b) for b in bounds)
        return Attempt(
            start, queued_until, running_at, terminating_at, end, attempt.cancelled, attempt.timed_out
        )
    own = Attempt.schedule(start, task.length_seconds, timeout=task_timeout_seconds(task.spec))
    cut_short = attempt.cancelled or attempt.timed_out or attempt.end < own.end - _SLACK_SECONDS
    if cut_short and attempt.terminating_at < own.terminating_at:
        cut = max(start, attempt.terminating_at)
        own.queued_until, own.running_at = min(own.queued_until, cut), min(own.running_at, cut)
        own.terminating_at, own.end = cut, max(cut, min(own.end, attempt.end))
        own.cancelled, own.timed_out = attempt.cancelled, attempt.timed_out
    return own


def is_shown(run: RunRecord, task: TaskRecord, now: float) -> bool:
    """Whether a task attempt exists yet: a retry appears when the attempt before it ends (and waits
    for its ``min_retry_interval_millis`` as WAITING_FOR_RETRY)."""
    if not task.offset_seconds:
        return True
    start = run.attempts[task.attempt_index].start + task.offset_seconds
    return now >= start - retry_interval_seconds(task.spec)


def task_runs(run: RunRecord, now: float) -> list[TaskRecord]:
    """The run's ``tasks[]``: each task's attempts in its latest run attempt, oldest first."""
    earlier: dict[tuple[str, int], list[TaskRecord]] = {}
    for old in run.replaced_tasks:
        earlier.setdefault((old.task_key, old.attempt_index), []).append(old)
    shown: list[TaskRecord] = []
    for task in run.tasks:
        chain = sorted(earlier.get((task.task_key, task.attempt_index), []), key=lambda t: t.attempt_number)
        shown.extend(t for t in [*chain, task] if is_shown(run, t, now))
    return shown


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
        outcome = effective_outcome(task, task_attempt(run, task))
        if SEVERITY.get(outcome, 3) < SEVERITY.get(worst, 3):
            worst, culprit = outcome, task
    return worst, culprit


def is_active(run: RunRecord, now: float) -> bool:
    return now < run.attempt.end


def start_ms(run: RunRecord) -> int:
    """The run's ``start_time`` as every reply shows it (rounded, as ``_render`` rounds). runs/list
    sorts, pages and filters by this same number, so a client that bounds ``start_time_from/to`` by a
    start time it was shown gets that run back (truncating here while replies round lost a run at the
    window's edge)."""
    return round(run.attempts[0].start * 1000)

"""Task attempts inside one run attempt: Databricks' task retry fields, and ``emulator.fail_attempts``.

A task's retry fields are read when its run attempt starts (a submit, a run-now, a repair):

- ``max_retries``: retries after an unsuccessful attempt (FAILED, INTERNAL_ERROR; TIMEDOUT too with
  ``retry_on_timeout``). 0 or absent: none; -1 ("retry indefinitely") counts as ``UNLIMITED_RETRIES``;
- ``min_retry_interval_millis``: the wait between an attempt's end and the next one's start (default
  0); the task shows the next attempt as WAITING_FOR_RETRY meanwhile, and the run stays RUNNING;
- ``retry_on_timeout``: whether an attempt that exceeds the task's ``timeout_seconds`` is retried.

Each outcome is known in advance (scripted), so the whole chain of attempts is planned at the start:
attempt ``n`` (its ``attempt_number``, counted across repairs) ends FAILED while
``n < fail_attempts``, then with the declared result state. A cancel, ``script_run`` or
``finish_run`` forgets the attempts that had not started (`drop_after`); a run ``timeout_seconds``
forgets those past the run's end.

Tasks without retry fields keep one attempt spanning their whole run attempt, and their own
``timeout_seconds`` is not applied (the run's is): only a retried task has attempts of its own length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._runs import (
    Attempt,
    RunRecord,
    TaskRecord,
    retry_interval_seconds,
    task_attempt,
    task_timeout_seconds,
    whole_number,
)
from ._scripting import DEFAULT_FAILURE

# max_retries=-1 means "retry indefinitely" on Databricks; the emulator stops after this many retries,
# so a task scripted to fail for ever still ends (FAILED) and its run page stays readable.
UNLIMITED_RETRIES = 100
_RETRIED = frozenset({"FAILED", "INTERNAL_ERROR"})


@dataclass(frozen=True, slots=True)
class PlannedAttempt:
    """One attempt of a task: from ``offset_seconds`` after its run attempt's start, for
    ``length_seconds`` (None: until the run attempt ends), ending with ``result_state``."""

    offset_seconds: float
    length_seconds: float | None
    result_state: str
    error: str | None


def max_retries(spec: dict[str, Any]) -> int:
    """How many retries a task allows (0 when the field is absent or not an integer)."""
    value = whole_number(spec.get("max_retries"))
    if value is None:
        return 0
    return UNLIMITED_RETRIES if value == -1 else max(value, 0)


def plan(
    spec: dict[str, Any],
    *,
    first_number: int,
    fail_attempts: int,
    result_state: str,
    error: str | None,
    seconds: float,
) -> list[PlannedAttempt]:
    """The attempts one task makes in a run attempt that starts with attempt number ``first_number``;
    each lasts ``seconds`` (cut at the task's ``timeout_seconds``)."""

    def outcome(number: int) -> tuple[str, str | None]:
        if number < fail_attempts:
            return "FAILED", error if error is not None else DEFAULT_FAILURE
        return result_state, error

    retries = max_retries(spec)
    if not retries:
        return [PlannedAttempt(0.0, None, *outcome(first_number))]
    shape = Attempt.schedule(0.0, seconds, timeout=task_timeout_seconds(spec))
    retry_on_timeout = spec.get("retry_on_timeout") in (True, "true")
    planned: list[PlannedAttempt] = []
    offset = 0.0
    for number in range(first_number, first_number + retries + 1):
        state, message = outcome(number)
        planned.append(PlannedAttempt(offset, seconds, state, message))
        ended = "TIMEDOUT" if shape.timed_out else state
        if not (ended in _RETRIED or (ended == "TIMEDOUT" and retry_on_timeout)):
            break
        offset += shape.end + retry_interval_seconds(spec)
    return planned


def span_seconds(task: TaskRecord) -> float | None:
    """Seconds from the run attempt's start to this task attempt's planned end (None: the run's end)."""
    if task.length_seconds is None:
        return None
    shape = Attempt.schedule(0.0, task.length_seconds, timeout=task_timeout_seconds(task.spec))
    return task.offset_seconds + shape.end


def drop_after(run: RunRecord, instant: float) -> list[TaskRecord]:
    """Forget the attempts of the run's latest run attempt that start after clock time ``instant``;
    each task's latest started attempt becomes its current one. Returns the forgotten attempts."""
    index = len(run.attempts) - 1
    start = run.attempts[index].start
    dropped: list[TaskRecord] = []
    for position, task in enumerate(run.tasks):
        if task.attempt_index != index or start + task.offset_seconds <= instant:
            continue
        chain = sorted(
            (t for t in run.replaced_tasks if t.task_key == task.task_key and t.attempt_index == index),
            key=lambda t: t.attempt_number,
        )
        started = [t for t in chain if start + t.offset_seconds <= instant]
        if not started:
            continue
        current, later = started[-1], [t for t in chain if start + t.offset_seconds > instant]
        gone = {id(current), *(id(t) for t in later)}
        run.replaced_tasks = [t for t in run.replaced_tasks if id(t) not in gone]
        run.tasks[position] = current
        dropped.extend([*later, task])
    return dropped


def fit_run_phases(run: RunRecord) -> None:
    """Align the latest run attempt's RUNNING and TERMINATING with its retried tasks' attempts: the run
    runs from its first task attempt's start of execution until its last one's clean-up. Without
    this the run's set-up and clean-up would be shares of the whole chain of attempts."""
    attempt = run.attempt
    index = len(run.attempts) - 1
    spans = [t for t in (*run.tasks, *run.replaced_tasks) if t.attempt_index == index]
    if attempt.timed_out or not spans or any(t.length_seconds is None for t in spans):
        return
    own = [task_attempt(run, t) for t in spans]
    attempt.running_at = max(attempt.queued_until, min(a.running_at for a in own))
    attempt.terminating_at = max(attempt.running_at, min(attempt.end, max(a.terminating_at for a in own)))

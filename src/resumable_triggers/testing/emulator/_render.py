"""The Jobs API JSON of runs and tasks (``runs/get``, ``runs/list``, the repair history), at a clock time.

Read off the records of `_runs`, never stored: the state of a run is computed from ``now`` each time.
"""

from __future__ import annotations

from typing import Any

from ._runs import (
    SEVERITY,
    Attempt,
    RunRecord,
    TaskRecord,
    effective_outcome,
    is_shown,
    parent_outcome,
    task_attempt,
    task_runs,
)

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


_WAITING_FOR_RETRY: tuple[dict[str, Any], dict[str, Any]] = (
    {
        "life_cycle_state": "WAITING_FOR_RETRY",
        "state_message": "Waiting for retry",
        "user_cancelled_or_timedout": False,
    },
    {"state": "WAITING"},
)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


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
    attempt = task_attempt(run, task)
    outcome = effective_outcome(task, attempt)
    if now < attempt.start:
        state, status = _WAITING_FOR_RETRY
    else:
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
        body["tasks"] = [render_task(run, task, now, page_url) for task in task_runs(run, now)]
        if run.job_clusters:
            body["job_clusters"] = run.job_clusters
    if run.job_parameters:
        body["job_parameters"] = run.job_parameters
    if with_history:
        # A run never repaired still has its ORIGINAL entry (the provider's get_latest_repair_id
        # reads a one-entry history as "no repair yet").
        body["repair_history"] = repair_history(run, now)
    return body


def repair_history(run: RunRecord, now: float) -> list[dict[str, Any]]:
    entries = []
    for index, attempt in enumerate(run.attempts):
        tasks = [
            t for t in [*run.replaced_tasks, *run.tasks] if t.attempt_index == index and is_shown(run, t, now)
        ]
        tasks.sort(key=lambda t: t.run_id)
        worst = "SUCCESS"
        for task in _latest_of_each(tasks):
            outcome = effective_outcome(task, task_attempt(run, task))
            if SEVERITY.get(outcome, 3) < SEVERITY.get(worst, 3):
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


def _latest_of_each(tasks: list[TaskRecord]) -> list[TaskRecord]:
    """One attempt per task key, the highest-numbered: a failure that a retry made good is not the
    attempt's outcome."""
    latest: dict[str, TaskRecord] = {}
    for task in tasks:
        if task.task_key not in latest or task.attempt_number >= latest[task.task_key].attempt_number:
            latest[task.task_key] = task
    return list(latest.values())

"""The ``tasks`` array of a submit or a job, checked before anything is created: the shape the
emulator relies on (objects with unique, non-empty ``task_key``; at most so many), and the retry
field values a workspace refuses. Types and the other rules are the shared request rules' business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import ErrorReply, invalid
from ._runs import whole_number

MAX_SUBMIT_TASKS = 100
MAX_JOB_TASKS = 1000


def validate_tasks(tasks: Sequence[Any], maximum: int) -> list[dict[str, Any]]:
    """Check the ``tasks`` array of a submit or job: objects with unique, non-empty ``task_key``."""
    if len(tasks) > maximum:
        raise invalid(
            f"Invalid value for parameter tasks: at most {maximum} tasks are allowed, got {len(tasks)}"
        )
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise ErrorReply(
                400, "MALFORMED_REQUEST", f"Invalid value for parameter tasks[{index}]: expected an object"
            )
        key = task.get("task_key")
        if not isinstance(key, str) or not key:
            raise invalid(
                f"Invalid value for parameter tasks[{index}].task_key: a non-empty string is required"
            )
        if key in seen:
            raise invalid(f"Invalid value for parameter tasks: task_key {key!r} is used more than once")
        seen.add(key)
        _check_retry_fields(task, index)
    return list(tasks)


def _check_retry_fields(task: Mapping[str, Any], index: int) -> None:
    # The types are the request rules' business; these are the values a workspace refuses.
    retries, interval = (
        whole_number(task.get("max_retries")),
        whole_number(task.get("min_retry_interval_millis")),
    )
    if retries is not None and retries < -1:
        raise invalid(
            f"Invalid value for parameter tasks[{index}].max_retries: must be -1 (unlimited) or >= 0, "
            f"got {retries}"
        )
    if interval is not None and interval < 0:
        raise invalid(
            f"Invalid value for parameter tasks[{index}].min_retry_interval_millis: must be >= 0, "
            f"got {interval}"
        )

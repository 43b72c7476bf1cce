"""Job specs, merged the way the provider merges them and validated before any API call.

Every message names the offending field by its path in the request (``tasks[2].task_key``), so a
typo in a DAG fails at the first try with a pointer to the line to fix, not as an HTTP 400 later::

    merge(json, named)  ->  normalise_submit / check_run_now_body
                              1. only JSON values (check_json), the provider's shapes (top-level task)
                              2. the workspace's own checks, shared with the emulator:
                                 client._request_rules (types and required fields from databricks-sdk,
                                 task keys, depends_on, one task type and one compute per task)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from resumable_triggers.databricks.client import _request_rules
from resumable_triggers.databricks.client._schema import Violation, create_shape, violation

MAX_TASKS = 100
# The one-task shapes the provider accepts at top level; API 2.2 wants them inside ``tasks``.
TASK_TYPES = (
    "notebook_task",
    "spark_jar_task",
    "spark_python_task",
    "spark_submit_task",
    "pipeline_task",
    "dbt_task",
    "python_wheel_task",
    "sql_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
)
_TASK_LEVEL = (*TASK_TYPES, "new_cluster", "existing_cluster_id", "libraries", "environment_key")


class InvalidSpecError(ValueError):
    """A job spec is invalid. ``field`` is the path of the offending field in the request body."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def merge(json_spec: Mapping[str, Any] | None, named: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's rule: named arguments that are not None override keys of ``json``."""
    if json_spec is not None and not isinstance(json_spec, Mapping):
        raise InvalidSpecError("json", f"must be a mapping, got {type(json_spec).__name__}")
    merged = dict(json_spec or {})
    merged.update((k, v) for k, v in named.items() if v is not None)
    return merged


def normalise_submit(spec: Mapping[str, Any], *, default_task_key: str) -> dict[str, Any]:
    """Validate a runs/submit body; a top-level single task (the provider's shape) moves into ``tasks``."""
    body = dict(spec)
    check_json(body, "json")
    top_level = [key for key in _TASK_LEVEL if key in body]
    if top_level and body.get("tasks"):
        raise InvalidSpecError(top_level[0], "cannot be combined with 'tasks'; put it inside a task")
    if top_level:
        task = {"task_key": default_task_key}
        for key in top_level:
            task[key] = body.pop(key)
        body["tasks"] = [task]
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise InvalidSpecError(
            "tasks", "at least one task is required (or a top-level task such as notebook_task)"
        )
    if len(tasks) > MAX_TASKS:
        raise InvalidSpecError("tasks", f"at most {MAX_TASKS} tasks are allowed, got {len(tasks)}")
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        _check_task(task, f"tasks[{index}]", seen)
    if "run_name" in body and not isinstance(body["run_name"], str):
        raise InvalidSpecError("run_name", "must be a string")
    _check_timeout(body)
    for key in ("access_control_list", "environments"):
        if key in body and not (
            isinstance(body[key], list) and all(isinstance(e, Mapping) for e in body[key])
        ):
            raise InvalidSpecError(key, "must be a list of objects")
    if "git_source" in body and not isinstance(body["git_source"], Mapping):
        raise InvalidSpecError("git_source", "must be an object")
    if "git_source" not in body and any("dbt_task" in task for task in tasks):
        # The provider checks this too; Databricks would only fail the run after starting a cluster.
        raise InvalidSpecError("git_source", "is required when a task is a dbt_task")
    _raise(_request_rules.check_submit(body))
    return body


def check_run_now_body(body: Mapping[str, Any]) -> None:
    """A run-now body holds only JSON and the shapes the workspace accepts (``notebook_params`` a
    mapping of strings, ``python_params`` a list of strings...); ``job_name`` stands in for ``job_id``."""
    check_json(body, "json")
    _raise(_request_rules.check_run_now(body, job_id_required=body.get("job_name") is None))


def _raise(violation: Violation | None) -> None:
    if violation is not None:
        raise InvalidSpecError(violation.path, violation.problem)


def _check_task(task: Any, path: str, seen: set[str]) -> None:
    if not isinstance(task, Mapping):
        raise InvalidSpecError(path, f"must be an object, got {type(task).__name__}")
    key = task.get("task_key")
    if not isinstance(key, str) or not key:
        raise InvalidSpecError(f"{path}.task_key", "is required and must be a non-empty string")
    if key in seen:
        raise InvalidSpecError(f"{path}.task_key", f"{key!r} is used by more than one task")
    seen.add(key)
    # Task types, their fields and the rest of the task: _request_rules, from databricks-sdk's models.
    if "libraries" in task and not isinstance(task["libraries"], list):
        raise InvalidSpecError(f"{path}.libraries", "must be a list")
    if "existing_cluster_id" in task and not isinstance(task["existing_cluster_id"], str):
        raise InvalidSpecError(f"{path}.existing_cluster_id", "must be a string")
    if "new_cluster" in task and not isinstance(task["new_cluster"], Mapping):
        raise InvalidSpecError(f"{path}.new_cluster", "must be an object")


def _check_timeout(body: Mapping[str, Any]) -> None:
    value = body.get("timeout_seconds")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSpecError("timeout_seconds", f"must be a non-negative integer, got {value!r}")


def check_run_now(job_id: Any, job_name: Any) -> None:
    if (job_id is None) == (job_name is None):
        raise InvalidSpecError("job_id", "set exactly one of job_id and job_name")
    if job_id is not None:
        try:
            if int(job_id) <= 0:
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidSpecError("job_id", f"must be a positive integer, got {job_id!r}") from None
    if job_name is not None and (not isinstance(job_name, str) or not job_name):
        raise InvalidSpecError("job_name", "must be a non-empty string")


def check_json(value: Any, path: str) -> None:
    """Only JSON goes over the wire: catch datetimes, sets, NaN... with the path that holds them."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidSpecError(path, f"has a non-string key {key!r}")
            check_json(item, f"{path}.{key}" if path != "json" else key)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidSpecError(path, f"must be a finite number, got {value!r}")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise InvalidSpecError(path, f"is not JSON-serialisable ({type(value).__name__})")


def check_repair(repair_run: Any, max_repairs: Any, reasons: Any) -> dict[str, dict[str, Any]]:
    """The repair arguments of run-now; the reasons' settings (empty when none) once they check out.

    Each reason's settings are what ``jobs/update`` sends as ``new_settings``: job settings, checked
    against the same databricks-sdk shape as ``jobs/create``.
    """
    if not isinstance(repair_run, bool):
        raise InvalidSpecError("repair_run", f"must be True or False, got {repair_run!r}")
    if isinstance(max_repairs, bool) or not isinstance(max_repairs, int) or max_repairs < 1:
        raise InvalidSpecError("max_repairs", f"must be an integer >= 1, got {max_repairs!r}")
    if reasons is None:
        return {}
    if not isinstance(reasons, Mapping):
        raise InvalidSpecError(
            "databricks_repair_reason_new_settings",
            "must map a reason (text in the run's state message) to job settings, "
            f"got {type(reasons).__name__}",
        )
    checked: dict[str, dict[str, Any]] = {}
    for reason, settings in reasons.items():
        path = f"databricks_repair_reason_new_settings[{reason!r}]"
        if not isinstance(reason, str) or not reason:
            raise InvalidSpecError(
                "databricks_repair_reason_new_settings", f"has a reason that is not text: {reason!r}"
            )
        if not isinstance(settings, Mapping):
            raise InvalidSpecError(path, f"must be job settings (a mapping), got {type(settings).__name__}")
        check_json(settings, path)
        _raise(violation(create_shape(), settings, path))
        checked[reason] = dict(settings)
    return checked

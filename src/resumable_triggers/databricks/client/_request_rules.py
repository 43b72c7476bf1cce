"""Jobs API request bodies checked as the workspace checks them, before anything is sent.

Two layers, both pure, both answering with the first ``Violation`` (or None)::

    check_submit(body)      runs/submit  --+-- _schema: required fields and JSON types, derived from
    check_create(body)      jobs/create  --|            databricks-sdk's models (see that module)
    check_run_now(body)     run-now      --+-- here: the rules the models do not carry
                                                  - task_key: 1-100 of [A-Za-z0-9_-], unique
                                                  - exactly one task type per task
                                                  - at most one compute per task
                                                  - depends_on names another task, and never loops

The operator (``databricks._spec``) raises the violation as ``InvalidSpecError``; the emulator answers
it as HTTP 400 with ``error_code`` = ``violation.kind.error_code``. Both sides run the same code, so a
DAG tested against the emulator cannot pass there and be rejected by a workspace for its body.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from resumable_triggers.databricks.client import _schema
from resumable_triggers.databricks.client._schema import ObjectOf, Violation

# The Jobs API reference gives task_key as "<= 100 characters, match pattern ^[\w\-\_]+$"; the SDK's
# models do not carry patterns. ASCII only: the workspace's pattern is not Unicode-aware.
TASK_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")
# A task runs on one of these, or on serverless compute when none is set.
COMPUTE_FIELDS = ("new_cluster", "existing_cluster_id", "job_cluster_key", "environment_key")


def check_submit(body: Mapping[str, Any]) -> Violation | None:
    """A ``runs/submit`` body (tasks already in ``tasks``: the top-level shape is the caller's)."""
    return _schema.violation(_schema.submit_shape(), body, "") or _check_tasks(body.get("tasks"), "tasks")


def check_create(body: Mapping[str, Any]) -> Violation | None:
    """A ``jobs/create`` body (job settings)."""
    return _schema.violation(_schema.create_shape(), body, "") or _check_tasks(body.get("tasks"), "tasks")


def check_run_now(body: Mapping[str, Any], *, job_id_required: bool = True) -> Violation | None:
    """A ``run-now`` body. ``job_id_required=False`` when the caller resolves a job name to an id later."""
    shape = _schema.run_now_shape()
    if not job_id_required and body.get("job_id") is None:
        body = {**body, "job_id": 0}  # stands in for the id the name will resolve to
    return _schema.violation(shape, body, "")


@functools.cache
def task_types() -> tuple[str, ...]:
    """Every task type a workspace knows (``notebook_task``, ``sql_task``...), from the SDK's model."""
    return tuple(
        name
        for name, field in ObjectOf(_schema._jobs().SubmitTask).fields.items()
        if name.endswith("_task") and isinstance(field.shape, ObjectOf)
    )


def _check_tasks(tasks: Any, path: str) -> Violation | None:
    if not isinstance(tasks, Sequence) or isinstance(tasks, str):
        return None  # absent, or already reported as a wrong type by the schema
    keys: dict[str, int] = {}
    for index, task in enumerate(tasks):
        where = f"{path}[{index}]"
        if found := _check_task(task, where):
            return found
        key = task["task_key"]
        if key in keys:
            return Violation(f"{where}.task_key", f"{key!r} is already the key of {path}[{keys[key]}]")
        keys[key] = index
    return _check_dependencies(tasks, keys, path)


def _check_task(task: Mapping[str, Any], path: str) -> Violation | None:
    key = task["task_key"]  # the schema made sure it is a string
    if not TASK_KEY.fullmatch(key):
        return Violation(
            f"{path}.task_key", f"{key!r} must be 1-100 characters of letters, digits, '_' and '-'"
        )
    types = [name for name in task_types() if task.get(name) is not None]
    if len(types) != 1:
        found = ", ".join(types) or "none"
        return Violation(
            path, f"needs exactly one task type (notebook_task, spark_python_task, ...); found {found}"
        )
    computes = [name for name in COMPUTE_FIELDS if task.get(name) is not None]
    if len(computes) > 1:
        return Violation(path, f"can run on one compute only; found {', '.join(computes)}")
    inner = (task.get("for_each_task") or {}).get("task")
    if isinstance(inner, Mapping):
        return _check_task(inner, f"{path}.for_each_task.task")
    return None


def _check_dependencies(
    tasks: Sequence[Mapping[str, Any]], keys: Mapping[str, int], path: str
) -> Violation | None:
    graph: dict[str, list[str]] = {}
    for index, task in enumerate(tasks):
        upstream = graph.setdefault(task["task_key"], [])
        for d_index, dependency in enumerate(task.get("depends_on") or ()):
            where = f"{path}[{index}].depends_on[{d_index}].task_key"
            name = dependency["task_key"]
            if name not in keys:
                return Violation(where, f"{name!r} is not the key of any task in {path}")
            if name == task["task_key"]:
                return Violation(where, f"task {name!r} cannot depend on itself")
            upstream.append(name)
    cycle = _cycle(graph)
    if cycle:
        first = cycle[0]
        return Violation(
            f"{path}[{keys[first]}].depends_on", f"tasks depend on each other in a loop: {' -> '.join(cycle)}"
        )
    return None


def _cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """One dependency loop (``a -> b -> a``), or [] — iterative, so a 1000-task chain cannot recurse."""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        trail: list[str] = [start]
        on_trail = {start}
        pending = [iter(graph[start])]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                pending.pop()
                finished = trail.pop()
                on_trail.discard(finished)
                done.add(finished)
                continue
            if step in on_trail:
                return [*trail[trail.index(step) :], step]
            if step not in done:
                trail.append(step)
                on_trail.add(step)
                pending.append(iter(graph[step]))
    return []

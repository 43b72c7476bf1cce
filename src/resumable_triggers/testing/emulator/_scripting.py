"""Outcomes, and reading them from ``emulator.*`` keys inside a submitted spec.

A DAG author can declare in the task parameters what the emulated run should do:

- ``emulator.duration_seconds``: seconds from submission to TERMINATED (float >= 0);
- ``emulator.result_state``: ``SUCCESS``, ``FAILED``, ``TIMEDOUT``, ``CANCELED``, any other result
  state, or the life-cycle outcomes ``INTERNAL_ERROR`` and ``SKIPPED``;
- ``emulator.error``: the task's error message (``runs/get-output`` ``error``);
- ``emulator.output``: the notebook's exit value (``runs/get-output`` ``notebook_output.result``);
- ``emulator.fail_attempts``: the task's first N attempts (integer >= 0, counting in-run task retries
  and repairs alike, by ``attempt_number``) end FAILED with ``emulator.error`` (or
  ``DEFAULT_FAILURE``); later attempts end with ``emulator.result_state``.

They are looked for in ``notebook_task.base_parameters`` (dict), any ``*_task.named_parameters``
(dict), any ``*_task.parameters`` (list of ``"key=value"`` strings) and, for run-now and repair, in
``notebook_params``/``job_parameters``/``python_named_params`` (dicts) and ``python_params``/
``jar_params``/``spark_submit_params`` (lists).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import invalid

RESULT_STATES = frozenset(
    {
        "SUCCESS",
        "FAILED",
        "TIMEDOUT",
        "CANCELED",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
        "EXCLUDED",
        "SUCCESS_WITH_FAILURES",
        "UPSTREAM_FAILED",
        "UPSTREAM_CANCELED",
        "DISABLED",
    }
)
# Outcomes that end the run in a life-cycle state of their own instead of TERMINATED.
LIFE_CYCLE_OUTCOMES = frozenset({"INTERNAL_ERROR", "SKIPPED"})
OUTCOMES = RESULT_STATES | LIFE_CYCLE_OUTCOMES

PREFIX = "emulator."
_KEYS = ("duration_seconds", "result_state", "error", "output", "fail_attempts")
# The error of an attempt failed by ``emulator.fail_attempts`` when no ``emulator.error`` is given.
DEFAULT_FAILURE = "Emulated failure: this attempt was scripted to fail (emulator.fail_attempts)."
_DICT_FIELDS = ("notebook_params", "job_parameters", "python_named_params", "sql_params")
_LIST_FIELDS = ("python_params", "jar_params", "spark_submit_params")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run (or task) ends with. ``duration_seconds`` None means "the emulator's default"."""

    result_state: str = "SUCCESS"
    duration_seconds: float | None = None
    error: str | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        check_outcome(self.result_state, self.duration_seconds)


def check_outcome(result_state: str, duration_seconds: float | None) -> None:
    """Raise ValueError naming what is wrong with an outcome given to a control method."""
    if result_state not in OUTCOMES:
        raise ValueError(f"result_state must be one of {sorted(OUTCOMES)}, not {result_state!r}.")
    if duration_seconds is not None and not (
        isinstance(duration_seconds, int | float)
        and not isinstance(duration_seconds, bool)
        and math.isfinite(duration_seconds)
        and duration_seconds >= 0
    ):
        raise ValueError(f"duration_seconds must be a finite number >= 0, not {duration_seconds!r}.")


@dataclass(frozen=True, slots=True)
class Declared:
    """The ``emulator.*`` keys found in one task's parameters (all optional)."""

    result_state: str | None = None
    duration_seconds: float | None = None
    error: str | None = None
    output: str | None = None
    fail_attempts: int | None = None


def check_fail_attempts(fail_attempts: int | None) -> None:
    """Raise ValueError unless ``fail_attempts`` is None or an integer >= 0 (for control methods)."""
    if fail_attempts is not None and not (
        isinstance(fail_attempts, int) and not isinstance(fail_attempts, bool) and fail_attempts >= 0
    ):
        raise ValueError(f"fail_attempts must be an integer >= 0, not {fail_attempts!r}.")


def _fail_attempts(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit()):
        raise invalid(f"emulator.fail_attempts must be an integer >= 0, got {value!r}.")
    return int(text)


def _pairs_from_list(values: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(values, list):
        for item in values:
            if isinstance(item, str) and item.startswith(PREFIX) and "=" in item:
                key, _, value = item.partition("=")
                yield key, value


def _pairs_from_dict(values: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(values, Mapping):
        yield from values.items()


def _task_pairs(task: Mapping[str, Any]) -> Iterable[tuple[Any, Any]]:
    for field, value in task.items():
        if not (isinstance(field, str) and field.endswith("_task") and isinstance(value, Mapping)):
            continue
        yield from _pairs_from_dict(value.get("base_parameters"))
        yield from _pairs_from_dict(value.get("named_parameters"))
        yield from _pairs_from_list(value.get("parameters"))


def _run_pairs(overrides: Mapping[str, Any]) -> Iterable[tuple[Any, Any]]:
    for field in _DICT_FIELDS:
        yield from _pairs_from_dict(overrides.get(field))
    for field in _LIST_FIELDS:
        yield from _pairs_from_list(overrides.get(field))
    # API 2.2 also takes job_parameters as a list of {"name", "default"/"value"} objects.
    if isinstance(overrides.get("job_parameters"), list):
        for item in overrides["job_parameters"]:
            if isinstance(item, Mapping):
                yield item.get("name"), item.get("value", item.get("default"))


def declared(task: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Declared:
    """Read the ``emulator.*`` keys of one task (plus run-level overrides); raises ErrorReply 400."""
    found: dict[str, Any] = {}
    pairs = list(_task_pairs(task))
    if overrides:
        pairs.extend(_run_pairs(overrides))
    for key, value in pairs:
        if isinstance(key, str) and key.startswith(PREFIX) and key[len(PREFIX) :] in _KEYS:
            found[key[len(PREFIX) :]] = value
    duration = found.get("duration_seconds")
    if duration is not None:
        try:
            duration = float(duration)
        except (TypeError, ValueError):
            duration = math.nan
        if not (math.isfinite(duration) and duration >= 0):
            raise invalid(
                "emulator.duration_seconds must be a number of seconds >= 0, "
                f"got {found['duration_seconds']!r}."
            )
    state = found.get("result_state")
    if state is not None and (not isinstance(state, str) or state.upper() not in OUTCOMES):
        raise invalid(f"emulator.result_state must be one of {sorted(OUTCOMES)}, got {state!r}.")
    return Declared(
        result_state=state.upper() if isinstance(state, str) else None,
        duration_seconds=duration,
        error=None if found.get("error") is None else str(found["error"]),
        output=None if found.get("output") is None else str(found["output"]),
        fail_attempts=_fail_attempts(found.get("fail_attempts")),
    )

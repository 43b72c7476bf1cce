"""Spec validation: bad input fails before any API call, with a message naming the field."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from resumable_triggers.databricks import (
    DatabricksRunNowOperator,
    DatabricksSubmitRunOperator,
    InvalidSpecError,
)
from resumable_triggers.databricks._spec import check_run_now_body, merge, normalise_submit

NOTEBOOK = {"notebook_path": "/x"}


def submit_body(**kwargs: Any) -> dict[str, Any]:
    operator = DatabricksSubmitRunOperator(task_id="etl", **kwargs)
    operator.validate_job()
    return operator._body


def test_top_level_task_moves_into_tasks_with_the_task_id_as_key() -> None:
    """The provider's single-task shape becomes API 2.2's ``tasks`` list; run_name defaults to the task id."""
    body = submit_body(
        notebook_task=NOTEBOOK, new_cluster={"num_workers": 1}, libraries=[{"pypi": {"package": "requests"}}]
    )
    assert {
        "run_name": "etl",
        "tasks": [
            {
                "task_key": "etl",
                "notebook_task": NOTEBOOK,
                "new_cluster": {"num_workers": 1},
                "libraries": [{"pypi": {"package": "requests"}}],
            }
        ],
    } == body


def test_named_arguments_override_json_like_the_provider() -> None:
    """``json`` is merged with the named fields; a named field that is set wins."""
    body = submit_body(
        json={"run_name": "from json", "timeout_seconds": 5}, run_name="named", notebook_task=NOTEBOOK
    )
    assert ("named", 5) == (body["run_name"], body["timeout_seconds"])


def test_users_idempotency_token_never_reaches_the_request_verbatim() -> None:
    """The library derives one token per cycle and generation (salted with the user's token)."""
    operator = DatabricksSubmitRunOperator(task_id="etl", notebook_task=NOTEBOOK, idempotency_token="mine")
    operator.validate_job()
    assert ("idempotency_token" not in operator._body, "mine") == (True, operator.token_salt())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tasks": [{"notebook_task": NOTEBOOK}]}, "tasks[0].task_key"),
        (
            {
                "tasks": [
                    {"task_key": "a", "notebook_task": NOTEBOOK},
                    {"task_key": "a", "notebook_task": NOTEBOOK},
                ]
            },
            "tasks[1].task_key",
        ),
        ({"tasks": [{"task_key": "a"}]}, "tasks[0]"),
        (
            {
                "tasks": [
                    {"task_key": "a", "notebook_task": NOTEBOOK, "spark_python_task": {"python_file": "x.py"}}
                ]
            },
            "tasks[0]",
        ),
        ({"tasks": [{"task_key": "a", "notebook_task": "nb"}]}, "tasks[0].notebook_task"),
        ({"tasks": []}, "tasks"),
        ({}, "tasks"),
        ({"tasks": [{"task_key": f"t{i}", "notebook_task": NOTEBOOK} for i in range(101)]}, "tasks"),
        ({"notebook_task": NOTEBOOK, "timeout_seconds": -1}, "timeout_seconds"),
        ({"notebook_task": NOTEBOOK, "timeout_seconds": "60"}, "timeout_seconds"),
        ({"notebook_task": NOTEBOOK, "access_control_list": ["admins"]}, "access_control_list"),
        ({"dbt_task": {"commands": ["dbt run"]}}, "git_source"),
        (
            {"notebook_task": {"notebook_path": "/x", "base_parameters": {"day": datetime.date(2026, 1, 1)}}},
            "notebook_task.base_parameters.day",
        ),
        (
            {"notebook_task": {"notebook_path": "/x", "base_parameters": {"ratio": float("nan")}}},
            "notebook_task.base_parameters.ratio",
        ),
        (
            {"notebook_task": NOTEBOOK, "tasks": [{"task_key": "a", "notebook_task": NOTEBOOK}]},
            "notebook_task",
        ),
        ({"json": ["not", "a", "mapping"]}, "json"),
    ],
)
def test_invalid_spec_is_rejected_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    """Each broken spec raises InvalidSpecError whose ``field`` points at the culprit."""
    with pytest.raises(InvalidSpecError) as info:
        submit_body(**kwargs)
    assert field == info.value.field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "job_id"),
        ({"job_id": 1, "job_name": "x"}, "job_id"),
        ({"job_id": "abc"}, "job_id"),
        ({"job_id": 0}, "job_id"),
        ({"job_name": ""}, "job_name"),
        ({"job_id": 5, "notebook_params": {"when": datetime.datetime(2026, 1, 1)}}, "notebook_params.when"),
    ],
)
def test_invalid_run_now_is_rejected_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    """run-now needs exactly one of job_id/job_name and JSON parameters."""
    operator = DatabricksRunNowOperator(task_id="nightly", **kwargs)
    with pytest.raises(InvalidSpecError) as info:
        operator.validate_job()
    assert field == info.value.field


def test_merge_ignores_named_fields_left_at_none() -> None:
    """Only named fields that were set override ``json``."""
    assert {"a": 1, "b": 2} == merge({"a": 1}, {"b": 2, "c": None})


def test_normalise_keeps_a_valid_multi_task_spec_as_is() -> None:
    """A correct API 2.2 spec passes through unchanged."""
    spec = {
        "run_name": "r",
        "tasks": [
            {"task_key": "a", "notebook_task": NOTEBOOK, "existing_cluster_id": "c"},
            {
                "task_key": "b",
                "spark_python_task": {"python_file": "x.py"},
                "depends_on": [{"task_key": "a"}],
            },
        ],
    }
    assert spec == normalise_submit(spec, default_task_key="ignored")


def test_providers_retry_arguments_are_accepted_with_a_warning() -> None:
    """Switching from the provider keeps working; its retry knobs are named as having no effect."""
    with pytest.warns(UserWarning, match="databricks_retry_limit"):
        DatabricksSubmitRunOperator(task_id="etl", notebook_task=NOTEBOOK, databricks_retry_limit=5)


def test_fire_and_forget_is_rejected_with_a_reason() -> None:
    """wait_for_termination=False contradicts resuming; the error says so at parse time."""
    with pytest.raises(ValueError, match="wait_for_termination"):
        DatabricksSubmitRunOperator(task_id="etl", notebook_task=NOTEBOOK, wait_for_termination=False)


def test_numbers_where_strings_are_wanted_pass_as_dags_written_for_the_provider_use_them() -> None:
    """DAGs written for the provider say ``base_parameters={"n": 1}``; the workspace reads numbers as
    strings, so they pass, and are sent as written."""
    body = normalise_submit(
        {"notebook_task": {"notebook_path": "/x", "base_parameters": {"n": 1, "r": 0.5}}},
        default_task_key="t",
    )
    check_run_now_body({"job_id": 5, "notebook_params": {"n": 2}, "python_params": [3, "x"]})
    assert {"n": 1, "r": 0.5} == body["tasks"][0]["notebook_task"]["base_parameters"]


def test_a_boolean_where_a_string_is_wanted_is_still_rejected_naming_the_field() -> None:
    """A boolean is no string to the workspace (the provider keeps booleans as booleans too)."""
    with pytest.raises(InvalidSpecError, match=r"tasks\[0\]\.notebook_task\.base_parameters\.dry"):
        normalise_submit(
            {"notebook_task": {"notebook_path": "/x", "base_parameters": {"dry": True}}}, default_task_key="t"
        )

"""The emulator rejects the bodies a workspace rejects, in the workspace's 400 shape, and runs nothing.

The same bodies go through the operator's own checks, so a DAG cannot pass against the emulator and
then be refused by a workspace for its spec (nor the other way round).
"""

from __future__ import annotations

from typing import Any

import pytest
from emulator_testkit import NOTEBOOK, Api, task

from resumable_triggers.databricks import InvalidSpecError
from resumable_triggers.databricks._spec import check_run_now_body, normalise_submit
from resumable_triggers.testing import Emulator

BAD_SUBMITS = [
    (
        {"tasks": [{"task_key": "a", "notebook_task": {}}]},
        "tasks[0].notebook_task.notebook_path",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        {"tasks": [task(), {"task_key": "b", "sql_task": {"warehouse_id": ["w"]}}]},
        "tasks[1].sql_task.warehouse_id",
        "MALFORMED_REQUEST",
    ),
    ({"tasks": [{**task(), "libraries": {"pypi": {}}}]}, "tasks[0].libraries", "MALFORMED_REQUEST"),
    (
        {"tasks": [{**task(), "new_cluster": {"num_workers": "many"}}]},
        "tasks[0].new_cluster.num_workers",
        "MALFORMED_REQUEST",
    ),
    ({"tasks": [{**task(), "run_if": "SOMETIMES"}]}, "tasks[0].run_if", "INVALID_PARAMETER_VALUE"),
    ({"tasks": [task("two words")]}, "tasks[0].task_key", "INVALID_PARAMETER_VALUE"),
    (
        {"tasks": [{**task(), "depends_on": [{"task_key": "ghost"}]}]},
        "tasks[0].depends_on[0].task_key",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        {
            "tasks": [
                {**task("a"), "depends_on": [{"task_key": "b"}]},
                {**task("b"), "depends_on": [{"task_key": "a"}]},
            ]
        },
        "tasks[0].depends_on",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        {"tasks": [{**task(), "existing_cluster_id": "c", "job_cluster_key": "j"}]},
        "tasks[0]",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        {"tasks": [{**task(), "spark_python_task": {"python_file": "x.py"}}]},
        "tasks[0]",
        "INVALID_PARAMETER_VALUE",
    ),
    (
        {"tasks": [task()], "git_source": {"git_url": "u"}},
        "git_source.git_provider",
        "INVALID_PARAMETER_VALUE",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "path", "error_code"), BAD_SUBMITS)
async def test_a_submit_the_workspace_rejects_is_a_400_naming_the_field(
    api: Api, emulator: Emulator, body: dict[str, Any], path: str, error_code: str
) -> None:
    """400 with the error_code the workspace uses, the field path in the message, and no run."""
    status, reply = await api.call("POST", "runs/submit", json={"run_name": "r", **body})
    assert (400, error_code, True, []) == (
        status,
        reply["error_code"],
        f"parameter {path}:" in reply["message"],
        emulator.runs(),
    )


@pytest.mark.parametrize(("body", "path", "error_code"), BAD_SUBMITS)
def test_the_operator_rejects_the_same_submit_at_the_same_field(
    body: dict[str, Any], path: str, error_code: str
) -> None:
    """The operator's check, run before any API call, names the same field as the emulator's 400."""
    with pytest.raises(InvalidSpecError) as info:
        normalise_submit({"run_name": "r", **body}, default_task_key="t")
    assert path == info.value.field


@pytest.mark.asyncio
async def test_the_legacy_top_level_task_is_checked_like_a_task(api: Api, emulator: Emulator) -> None:
    """The 2.0 shape (a top-level notebook_task) gets the same field checks as one inside ``tasks``."""
    status, reply = await api.call(
        "POST", "runs/submit", json={"run_name": "r", "notebook_task": {"base_parameters": {}}}
    )
    ok = await api.call("POST", "runs/submit", json={"run_name": "with spaces", "notebook_task": NOTEBOOK})
    assert (400, "INVALID_PARAMETER_VALUE", 200) == (status, reply["error_code"], ok[0])
    assert "notebook_task.notebook_path" in reply["message"]


BAD_RUN_NOWS = [
    ({"notebook_params": {"day": True}}, "notebook_params.day"),
    ({"python_params": "a b"}, "python_params"),
    ({"jar_params": [{"a": 1}]}, "jar_params[0]"),
    ({"python_named_params": {"n": ["x"]}}, "python_named_params.n"),
    ({"job_parameters": {"p": [2]}}, "job_parameters.p"),
    ({"spark_submit_params": [True]}, "spark_submit_params[0]"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("params", "path"), BAD_RUN_NOWS)
async def test_run_now_parameters_of_the_wrong_shape_are_a_400_and_start_nothing(
    api: Api, emulator: Emulator, params: dict[str, Any], path: str
) -> None:
    """run-now's parameter mappings and lists hold strings only; anything else is MALFORMED_REQUEST."""
    job = await api.ok("POST", "jobs/create", json={"name": "j", "tasks": [task()]})
    status, reply = await api.call("POST", "run-now", json={"job_id": job["job_id"], **params})
    assert (400, "MALFORMED_REQUEST", True, []) == (
        status,
        reply["error_code"],
        f"parameter {path}:" in reply["message"],
        emulator.runs(),
    )


@pytest.mark.parametrize(("params", "path"), BAD_RUN_NOWS)
def test_the_operator_rejects_the_same_run_now_at_the_same_field(params: dict[str, Any], path: str) -> None:
    """The operator's run-now check agrees with the emulator's, by job id and by job name."""
    for body in ({"job_id": 1, **params}, {"job_name": "j", **params}):
        with pytest.raises(InvalidSpecError) as info:
            check_run_now_body(body)
        assert path == info.value.field


@pytest.mark.asyncio
async def test_jobs_create_checks_its_tasks_like_a_submit(api: Api) -> None:
    """A job's tasks obey the same rules: here a dependency on a task the job does not have."""
    status, reply = await api.call(
        "POST", "jobs/create", json={"name": "j", "tasks": [{**task(), "depends_on": [{"task_key": "x"}]}]}
    )
    assert (400, "INVALID_PARAMETER_VALUE", True) == (
        status,
        reply["error_code"],
        "tasks[0].depends_on[0].task_key" in reply["message"],
    )

"""Request bodies checked as the workspace checks them: schema from databricks-sdk, plus task rules."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk.service import compute, jobs

from resumable_triggers.databricks.client._request_rules import (
    check_create,
    check_run_now,
    check_submit,
    task_types,
)
from resumable_triggers.databricks.client._schema import ObjectOf, ViolationKind, submit_shape

NOTEBOOK = {"notebook_path": "/x"}


def nb(key: str, **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "notebook_task": NOTEBOOK, **extra}


def submit(*tasks: dict[str, Any], **body: Any) -> Any:
    return check_submit({"run_name": "r", "tasks": list(tasks), **body})


@pytest.mark.parametrize(
    ("task", "path"),
    [
        ({"task_key": "a", "notebook_task": {}}, "tasks[0].notebook_task.notebook_path"),
        (
            {"task_key": "a", "spark_python_task": {"parameters": []}},
            "tasks[0].spark_python_task.python_file",
        ),
        ({"task_key": "a", "sql_task": {"query": {"query_id": "q"}}}, "tasks[0].sql_task.warehouse_id"),
        ({"task_key": "a", "run_job_task": {}}, "tasks[0].run_job_task.job_id"),
        (nb("a", libraries=[{"pypi": {"repo": "r"}}]), "tasks[0].libraries[0].pypi.package"),
        ({"task_key": "a", "notebook_task": {"notebook_path": None}}, "tasks[0].notebook_task.notebook_path"),
    ],
)
def test_a_missing_required_field_is_rejected_at_its_path(task: dict[str, Any], path: str) -> None:
    """Fields the SDK's models require (no default) must be present and not null, at any depth."""
    found = submit(task)
    assert (path, ViolationKind.INVALID_VALUE) == (found.path, found.kind)


@pytest.mark.parametrize(
    ("task", "path"),
    [
        (
            nb("a", notebook_task={"notebook_path": "/x", "base_parameters": ["a"]}),
            "tasks[0].notebook_task.base_parameters",
        ),
        (
            nb("a", notebook_task={"notebook_path": "/x", "base_parameters": {"n": True}}),
            "tasks[0].notebook_task.base_parameters.n",
        ),
        (nb("a", libraries={"pypi": {"package": "p"}}), "tasks[0].libraries"),
        (nb("a", new_cluster={"num_workers": "two"}), "tasks[0].new_cluster.num_workers"),
        (nb("a", new_cluster={"num_workers": True}), "tasks[0].new_cluster.num_workers"),
        (nb("a", new_cluster={"num_workers": 1.5}), "tasks[0].new_cluster.num_workers"),
        (nb("a", max_retries=[1]), "tasks[0].max_retries"),
        (nb("a", disabled="yes"), "tasks[0].disabled"),
        (nb("a", notebook_task={"notebook_path": {"p": 7}}), "tasks[0].notebook_task.notebook_path"),
    ],
)
def test_a_wrong_json_type_anywhere_is_a_malformed_request(task: dict[str, Any], path: str) -> None:
    """Objects, lists, strings, integers and booleans are checked against the SDK's type hints."""
    found = submit(task)
    assert (path, ViolationKind.WRONG_TYPE) == (found.path, found.kind)


def test_an_enum_value_the_api_does_not_know_is_rejected_with_the_known_values() -> None:
    """``notebook_task.source`` is an SDK enum: another value is named, with the allowed ones."""
    found = submit(nb("a", notebook_task={"notebook_path": "/x", "source": "S3"}))
    assert ("tasks[0].notebook_task.source", ViolationKind.INVALID_VALUE) == (found.path, found.kind)
    assert "GIT, WORKSPACE" in found.problem
    assert None is submit(nb("a", notebook_task={"notebook_path": "/x", "source": "GIT"}))


@pytest.mark.parametrize("workers", [2, 2.0, "2"])
def test_integers_pass_in_every_form_protobuf_json_accepts(workers: Any) -> None:
    """A whole number may arrive as 2, 2.0 or "2" (quoted int64), as the workspace's JSON mapping allows."""
    assert None is submit(nb("a", new_cluster={"num_workers": workers, "spark_version": "15.4.x"}))


def test_keys_the_sdk_does_not_know_are_ignored_at_every_level() -> None:
    """A field newer than the installed SDK is not an error: the workspace, not this library, decides."""
    task = nb("a", brand_new_option={"x": 1}, notebook_task={**NOTEBOOK, "new_knob": 3})
    assert None is check_submit({"tasks": [task], "future_top_level": [1, 2]})


def test_emulator_keys_in_base_parameters_are_plain_string_parameters() -> None:
    """The emulator's ``emulator.*`` scripting keys are ordinary string values of a string mapping."""
    params = {"emulator.duration_seconds": "2", "emulator.outcome": "FAILED"}
    assert None is submit(nb("a", notebook_task={**NOTEBOOK, "base_parameters": params}))


@pytest.mark.parametrize("key", ["has space", "x" * 101, "ünïcode", "", "a.b", "a/b"])
def test_task_keys_outside_the_workspaces_pattern_are_rejected(key: str) -> None:
    """task_key must be 1-100 characters of ASCII letters, digits, '_' and '-'."""
    assert "tasks[0].task_key" == submit(nb(key)).path


@pytest.mark.parametrize("key", ["x" * 100, "a_b-C9", "_"])
def test_task_keys_inside_the_pattern_pass(key: str) -> None:
    """The longest key allowed and every allowed character pass."""
    assert None is submit(nb(key))


def test_a_task_key_used_twice_names_the_second_task() -> None:
    """Task keys are unique within a body; the message points back at the first owner."""
    found = submit(nb("a"), nb("b"), nb("a"))
    assert ("tasks[2].task_key", True) == (found.path, "tasks[0]" in found.problem)


@pytest.mark.parametrize(
    ("tasks", "path", "words"),
    [
        ([nb("a", depends_on=[{"task_key": "zz"}])], "tasks[0].depends_on[0].task_key", "'zz'"),
        ([nb("a", depends_on=[{"task_key": "a"}])], "tasks[0].depends_on[0].task_key", "itself"),
        (
            [
                nb("a", depends_on=[{"task_key": "c"}]),
                nb("b", depends_on=[{"task_key": "a"}]),
                nb("c", depends_on=[{"task_key": "b"}]),
            ],
            "tasks[0].depends_on",
            "a -> c -> b -> a",
        ),
        ([nb("a", depends_on=[{}])], "tasks[0].depends_on[0].task_key", "required"),
    ],
)
def test_depends_on_must_name_another_task_and_never_loop(
    tasks: list[dict[str, Any]], path: str, words: str
) -> None:
    """A missing upstream, a self-dependency and a cycle are each rejected where they start."""
    found = submit(*tasks)
    assert (path, True) == (found.path, words in found.problem)


def test_a_diamond_of_dependencies_and_a_long_chain_pass() -> None:
    """Shared upstreams are not loops; a 1000-task chain is walked without recursion."""
    diamond = [
        nb("a"),
        nb("b", depends_on=[{"task_key": "a"}]),
        nb("c", depends_on=[{"task_key": "a"}]),
        nb("d", depends_on=[{"task_key": "b"}, {"task_key": "c"}]),
    ]
    chain = [nb("t0")] + [nb(f"t{i}", depends_on=[{"task_key": f"t{i - 1}"}]) for i in range(1, 1000)]
    assert (None, None) == (submit(*diamond), check_create({"name": "j", "tasks": chain}))


def test_a_task_needs_exactly_one_task_type_known_to_the_sdk() -> None:
    """None or two task types are rejected; a type this repo never listed (from the SDK) is accepted."""
    assert "tasks[0]" == submit({"task_key": "a"}).path
    two = nb("a", spark_python_task={"python_file": "x.py"})
    assert ("tasks[0]", True) == (submit(two).path, "notebook_task, spark_python_task" in submit(two).problem)
    assert {"notebook_task", "dashboard_task", "power_bi_task"} <= set(task_types())
    assert None is submit({"task_key": "a", "dashboard_task": {"dashboard_id": "d"}})


@pytest.mark.parametrize(
    "computes",
    [
        {"new_cluster": {"num_workers": 1}, "existing_cluster_id": "c"},
        {"existing_cluster_id": "c", "job_cluster_key": "j"},
        {"job_cluster_key": "j", "environment_key": "e"},
    ],
)
def test_a_task_runs_on_at_most_one_compute(computes: dict[str, Any]) -> None:
    """Two of new_cluster, existing_cluster_id, job_cluster_key and environment_key are rejected."""
    found = submit(nb("a", **computes))
    assert ("tasks[0]", True) == (found.path, "one compute" in found.problem)


def test_a_serverless_task_with_no_compute_passes() -> None:
    """No compute at all means serverless, which the workspace accepts."""
    assert None is submit(nb("a"))


def test_the_inner_task_of_a_for_each_task_is_checked_too() -> None:
    """for_each_task.task is a Task: its required fields and task rules apply."""
    outer = {"task_key": "loop", "for_each_task": {"inputs": "[1]", "task": {"task_key": "in side"}}}
    assert "tasks[0].for_each_task.task.task_key" == submit(outer).path


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"job_id": 1, "notebook_params": {"day": [1]}}, "notebook_params.day"),
        ({"job_id": 1, "python_named_params": ["a"]}, "python_named_params"),
        ({"job_id": 1, "job_parameters": {"x": None, "y": True}}, "job_parameters.y"),
        ({"job_id": 1, "python_params": "a b"}, "python_params"),
        ({"job_id": 1, "jar_params": [False]}, "jar_params[0]"),
        ({"job_id": 1, "spark_submit_params": [{"a": "b"}]}, "spark_submit_params[0]"),
        ({"job_id": "one"}, "job_id"),
        ({}, "job_id"),
    ],
)
def test_run_now_parameters_of_the_wrong_shape_are_rejected(body: dict[str, Any], path: str) -> None:
    """Mappings of strings and lists of strings, as the SDK's run_now signature types them."""
    assert path == check_run_now(body).path


def test_run_now_by_job_name_does_not_need_a_job_id_yet() -> None:
    """A job name is resolved to an id later, so a body without job_id passes when told so."""
    assert (None, "job_id") == (
        check_run_now({"job_name": "n", "notebook_params": {"a": "b"}}, job_id_required=False),
        check_run_now({"job_name": "n"}).path,
    )


def test_field_names_are_the_wire_names_the_sdk_writes() -> None:
    """JSON names come from the SDK's as_dict (``file_name`` goes out as ``fileName``)."""
    written = compute.Results(file_name="f").as_dict()
    assert (set(written), {"fileName"} & set(ObjectOf(compute.Results).fields)) == (
        {"fileName"},
        {"fileName"},
    )


def test_the_submit_schema_is_the_sdks_submit_signature() -> None:
    """Top-level submit fields are exactly JobsAPI.submit's keyword parameters: nothing hand-written."""
    import inspect

    assert set(inspect.signature(jobs.JobsAPI.submit).parameters) - {"self"} == set(submit_shape().fields)


def test_numbers_where_strings_are_wanted_pass_as_the_workspace_reads_them() -> None:
    """The provider's own run-now forwards ``{"batch": 3}`` into job_parameters unquoted, and the
    workspace takes numbers for strings: such a body is valid; a boolean there is not."""
    assert check_run_now({"job_id": 1, "job_parameters": {"batch": 3}, "python_params": [1.5]}) is None
    assert "job_parameters.dry" == check_run_now({"job_id": 1, "job_parameters": {"dry": True}}).path

"""Params forwarding, as pure functions, against the provider's own code for the same inputs.

The provider's operators build their request without any API call for these inputs (no job_name, no
pipeline_name, OpenLineage off), so each case is compared with what the provider itself would send.
"""

from __future__ import annotations

from typing import Any

import pytest

from resumable_triggers.databricks import _provider_payload, _spec

provider = pytest.importorskip("airflow.providers.databricks.operators.databricks")

PARAMS = {"region": "eu", "batch": 3, "dry": True, "skip": None, "nested": {"n": 1, "xs": [1.5, "a"]}}


@pytest.mark.parametrize(
    ("fields", "forward"),
    [
        ({}, True),
        ({}, False),
        ({"job_parameters": {"day": "today"}}, True),  # explicit job_parameters win
        ({"job_parameters": {}}, True),  # empty ones do not: params fill them, as in the provider
        ({"notebook_params": {"a": "1"}}, True),  # a legacy slot cannot be combined with job_parameters
        ({"dbt_commands": ["dbt run"]}, True),
    ],
)
def test_run_now_forwarding_matches_the_provider(fields: dict[str, Any], forward: bool) -> None:
    """forward_dag_params on or off, with or without other parameters: the same job_parameters (or
    none) as the provider's operator builds, values as they are (the provider forwards after
    normalising its run-now body)."""
    theirs = provider.DatabricksRunNowOperator(
        task_id="t", job_id=42, params=PARAMS, forward_dag_params=forward, **fields
    )
    expected = theirs._build_run_now_payload(context={})
    body = {"job_id": 42, **fields}
    actual = _provider_payload.forward_as_job_parameters(body, theirs.params) if forward else body
    assert expected.get("job_parameters") == actual.get("job_parameters")


@pytest.mark.parametrize(
    "task",
    [
        {"notebook_task": {"notebook_path": "/x"}},
        {"notebook_task": {"notebook_path": "/x", "base_parameters": {"own": "1"}}},
        {"python_wheel_task": {"package_name": "p", "entry_point": "e"}},
        {"sql_task": {"warehouse_id": "w", "query": {"query_id": "q"}}},
        {"run_job_task": {"job_id": 7}},
        {"spark_python_task": {"python_file": "/c.py"}},
    ],
)
def test_submit_forwarding_fills_the_same_task_slots_as_the_provider(task: dict[str, Any]) -> None:
    """Each task type's dict-shaped slot is filled when empty and left alone when set, list-shaped
    tasks are skipped, and values are normalised as the provider's body is (numbers as strings)."""
    theirs = provider.DatabricksSubmitRunOperator(
        task_id="t",
        params=PARAMS,
        tasks=[{"task_key": "a", "existing_cluster_id": "c", **task}],
        openlineage_inject_parent_job_info=False,
        openlineage_inject_transport_info=False,
    )
    [expected] = theirs._prepare_submit_json(context={})["tasks"]
    body = _spec.normalise_submit(
        {"tasks": [{"task_key": "a", "existing_cluster_id": "c", **task}]}, default_task_key="t"
    )
    [actual] = _provider_payload.forward_into_tasks(body, theirs.params)["tasks"]
    [task_type] = task
    slot = _provider_payload.TASK_PARAMETER_SLOTS.get(task_type)
    assert (expected[task_type].get(slot), list(expected)) == (actual[task_type].get(slot), list(actual))


def test_nothing_is_forwarded_without_params() -> None:
    """No params (or only None ones): the body goes out as it came."""
    body = {"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]}
    assert (body, {"job_id": 1}) == (
        _provider_payload.forward_into_tasks(body, {"skip": None}),
        _provider_payload.forward_as_job_parameters({"job_id": 1}, {}),
    )


def test_run_now_lineage_is_not_injected_next_to_a_legacy_slot() -> None:
    """The API refuses job_parameters beside notebook_params: the body keeps its legacy slot only."""
    body = {"notebook_params": {"a": "1"}}
    assert body == _provider_payload.inject_lineage_into_run_now(body, context={})  # type: ignore[arg-type]

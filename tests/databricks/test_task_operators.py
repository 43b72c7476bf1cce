"""DatabricksNotebookOperator and DatabricksTaskOperator: the provider's body, once per logical attempt.

The wire comparisons run the provider's operator beside ours in one DAG (tests/dags/
databricks_task_operators.py) through a recording proxy in front of the emulator; the crash tests count
the runs the workspace really created.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from test_operators import run_dag, xcom
from wire_recorder import WireRecorder, recording_proxy

from resumable_triggers.databricks import (
    DatabricksNotebookOperator,
    DatabricksTaskOperator,
    InsideDatabricksWorkflowError,
    InvalidSpecError,
)
from resumable_triggers.testing import EmulatorFactory, EmulatorHandle

pytestmark = pytest.mark.timeout(90)

NOTEBOOK = {"notebook_path": "/jobs/etl", "source": "WORKSPACE", "existing_cluster_id": "0101-abc"}


@pytest.fixture
def emulator(databricks_emulator_factory: EmulatorFactory) -> EmulatorHandle:
    return databricks_emulator_factory(run_seconds=1.0)


@pytest.fixture
def wire(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[WireRecorder]:
    """The Airflow connection (and DATABRICKS_HOST) point at a recording proxy of the emulator."""
    with recording_proxy(emulator.url) as recorder:
        proxied = EmulatorHandle(recorder.url, emulator.token, emulator.emulator)
        for name, value in proxied.environment().items():
            monkeypatch.setenv(name, value)
        yield recorder


def sent_side_by_side(dagbag: Any, dag_id: str, wire: WireRecorder) -> tuple[str, dict[str, Any], str]:
    """Run the DAG; the provider's runs/submit body, ours without its token, and our token."""
    state = str(dagbag.get_dag(dag_id).test().state)
    theirs, ours = wire.bodies("jobs/runs/submit")
    assert (state, "idempotency_token") == ("success", next(iter(ours.keys() - theirs.keys())))
    token = ours.pop("idempotency_token")
    return state, {"theirs": theirs, "ours": ours}, token


def test_notebook_sends_the_providers_single_task_body_plus_our_token(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """Without task retry fields both send the one-task shape: run_name and notebook_task at the top,
    notebook_params (rendered) as base_parameters, notebook_packages as libraries, execution_timeout
    as timeout_seconds, the new_cluster; ours adds only an idempotency token."""
    _, bodies, token = sent_side_by_side(dagbag, "dbxn_notebook_like_provider", wire)
    assert bodies["theirs"] == bodies["ours"]
    assert (
        "etl_key",
        1200,
        {"day": "2026-01-31", "emulator.duration_seconds": "0.5"},
        [{"pypi": {"package": "simplejson==3.19.3"}}],
    ) == (
        bodies["ours"]["run_name"],
        bodies["ours"]["timeout_seconds"],
        bodies["ours"]["notebook_task"]["base_parameters"],
        bodies["ours"]["libraries"],
    )
    assert token


def test_notebook_with_task_retry_fields_lists_the_task_as_the_provider_does(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """A task retry field (here max_retries templated from params, as a string) moves the task into
    ``tasks`` with its task_key and the converted retry fields, in both; timeout_seconds is 0 (no
    limit) without an execution_timeout."""
    _, bodies, _ = sent_side_by_side(dagbag, "dbxn_notebook_retries_like_provider", wire)
    assert bodies["theirs"] == bodies["ours"]
    [task] = bodies["ours"]["tasks"]
    assert ("etl_key", 2, 1000, True, 0) == (
        task["task_key"],
        task["max_retries"],
        task["min_retry_interval_millis"],
        task["retry_on_timeout"],
        task["timeout_seconds"],
    )


def test_task_operator_sends_its_task_config_as_the_provider_does(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """task_config (rendered) is the task, the named max_retries overrides its own, and the cluster is
    added beside it, in both."""
    _, bodies, _ = sent_side_by_side(dagbag, "dbxn_task_like_provider", wire)
    assert bodies["theirs"] == bodies["ours"]
    [task] = bodies["ours"]["tasks"]
    assert ("report_key", 1, "0101-abc", "2026-01-31") == (
        task["task_key"],
        task["max_retries"],
        task["existing_cluster_id"],
        task["notebook_task"]["base_parameters"]["day"],
    )


def test_the_default_task_key_is_the_providers(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """Without databricks_task_key the run is named with the provider's md5 of ``dag_id__task_id``,
    as derived by the provider's own operator for the same task."""
    from airflow.providers.databricks.operators.databricks import (
        DatabricksNotebookOperator as ProviderNotebookOperator,
    )
    from airflow.sdk import DAG

    state, _, _ = run_dag(dagbag, "dbxn_default_key")
    [body] = wire.bodies("jobs/runs/submit")
    with DAG("dbxn_default_key", schedule=None):
        theirs = ProviderNotebookOperator(task_id="ours", **NOTEBOOK)
    expected = hashlib.md5(b"dbxn_default_key__ours").hexdigest()
    assert ("success", expected, expected) == (state, theirs.databricks_task_key, body["run_name"])


@pytest.mark.parametrize(
    "dag_id",
    [
        "dbxn_notebook_crash_after_submit",
        "dbxn_notebook_crash_after_persist",
        "dbxn_task_crash_after_submit",
        "dbxn_task_crash_after_persist",
    ],
)
def test_a_worker_killed_after_submit_resumes_the_one_run(
    dag_id: str, dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """Killed after submit (run id never persisted) or after persisting it: the retry gets the same
    run back (same token) or reconnects to it; the workspace created one run, which the XComs name."""
    emulator = databricks_emulator_env.emulator
    state, store, tries = run_dag(dagbag, dag_id)
    [run] = emulator.runs()
    [record] = store.values()
    assert ("success", 1, 2, "SUCCESS") == (
        state,
        emulator.counters().runs_submitted,
        tries,
        run["state"]["result_state"],
    )
    assert (run["run_id"], run["run_id"], run["run_page_url"]) == (
        record["external_id"],
        xcom(dag_id, "run_id"),
        xcom(dag_id, "run_page_url"),
    )


def test_the_resume_records_of_the_two_operators_have_keys_of_their_own(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """Each operator writes its record under its own, pinned task_state_store key (renaming one would
    orphan every in-flight record)."""
    _, notebook_store, _ = run_dag(dagbag, "dbxn_notebook_crash_after_persist")
    _, task_store, _ = run_dag(dagbag, "dbxn_task_crash_after_persist")
    assert (["resumable_triggers.databricks_notebook"], ["resumable_triggers.databricks_task"]) == (
        list(notebook_store),
        list(task_store),
    )


@pytest.mark.parametrize("operator", [DatabricksNotebookOperator, DatabricksTaskOperator])
def test_inside_a_databricks_workflow_task_group_the_dag_fails_to_parse_naming_the_alternative(
    operator: type,
) -> None:
    """In a provider DatabricksWorkflowTaskGroup (even in a group nested inside it) construction
    raises, naming the group and the provider's operator to use there: never a second run beside
    the workflow's job."""
    from airflow.providers.databricks.operators.databricks_workflow import DatabricksWorkflowTaskGroup
    from airflow.sdk import DAG, TaskGroup

    arguments = (
        {"task_config": {"notebook_task": {"notebook_path": "/x"}}}
        if operator is DatabricksTaskOperator
        else {
            "notebook_path": "/x",
            "source": "WORKSPACE",
        }
    )
    # pytest.raises outermost: the error goes out through the group's own exit, as at DAG parse.
    with (
        pytest.raises(InsideDatabricksWorkflowError) as raised,
        DAG("dbxn_in_workflow", schedule=None),
        DatabricksWorkflowTaskGroup(group_id="workflow", databricks_conn_id="databricks_default"),
        TaskGroup(group_id="inner"),
    ):
        operator(task_id="t", job_cluster_key="shared", **arguments)
    name = operator.__name__
    assert (name, "workflow.inner.t", "workflow") == (
        raised.value.operator,
        raised.value.task_id,
        raised.value.group_id,
    )
    assert f"use the provider's airflow.providers.databricks.operators.databricks.{name}" in str(raised.value)


def test_a_task_folded_into_a_workflow_after_construction_refuses_to_convert() -> None:
    """Added to a workflow group after it was built, the operator cannot be turned into one of the
    workflow job's tasks: the provider's conversion raises the same error instead of half-working."""
    operator = DatabricksNotebookOperator(task_id="t", **NOTEBOOK)
    with pytest.raises(InsideDatabricksWorkflowError, match="use the provider's"):
        operator._convert_to_databricks_workflow_task([], {})


def test_outside_a_workflow_an_ordinary_task_group_is_fine() -> None:
    """Only the workflow group is refused: a plain TaskGroup holds the operator as any other."""
    from airflow.sdk import DAG, TaskGroup

    with DAG("dbxn_in_group", schedule=None), TaskGroup(group_id="plain"):
        task = DatabricksNotebookOperator(task_id="t", **NOTEBOOK)
    assert "plain.t" == task.task_id


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"new_cluster": {"num_workers": 1}}, "new_cluster"),
        ({"existing_cluster_id": ""}, "existing_cluster_id"),
        ({"execution_timeout": timedelta(0)}, "execution_timeout"),
    ],
)
def test_a_cluster_or_timeout_the_provider_would_refuse_at_run_time_is_refused_at_parse(
    arguments: dict[str, Any], field: str
) -> None:
    """Both clusters, neither (job_cluster_key is no cluster standalone), or a zero execution_timeout:
    the provider raises only when the task runs; here the DAG fails to parse, naming the field."""
    with pytest.raises(InvalidSpecError) as raised:
        DatabricksNotebookOperator(task_id="t", **{**NOTEBOOK, **arguments})
    assert field == raised.value.field


def test_an_unparsable_templated_retry_field_fails_before_any_api_call() -> None:
    """A max_retries that renders to something not an integer fails the try naming the field (the
    provider would send the int() error from its worker); nothing is submitted."""
    operator = DatabricksTaskOperator(
        task_id="t", task_config={"notebook_task": {"notebook_path": "/x"}}, existing_cluster_id="c"
    )
    operator.max_retries = "two"
    with pytest.raises(InvalidSpecError, match=r"^max_retries: must be an integer, got 'two'$"):
        operator.validate_job()

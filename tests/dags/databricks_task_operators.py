"""DAGs for the one-task operators, run by tests/databricks/test_task_operators.py against the emulator.

Where a DAG holds a task ``provider`` (the provider's own operator) beside ``ours`` with the same
arguments, the test compares the two runs/submit requests on the wire. Both are given the same
``databricks_task_key``: the default one is derived from the task id, which differs between the two
(``dbxn_default_key`` checks that default against the provider's own derivation).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.databricks.operators import databricks as provider
from airflow.sdk import DAG
from fault_injection import faulty

from resumable_triggers.databricks import DatabricksNotebookOperator, DatabricksTaskOperator

PARAMS = {"day": "2026-01-31", "retries": "2"}
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1}


def _dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        params=PARAMS,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
        **kwargs,
    )


def _side_by_side(dag_id: str, operators: tuple[type, type], arguments: dict[str, Any]) -> DAG:
    theirs, ours = operators
    with _dag(dag_id) as dag:
        _provider = theirs(task_id="provider", polling_period_seconds=1, deferrable=False, **arguments)
        _provider >> ours(task_id="ours", polling_period_seconds=0.2, **arguments)
    return dag


# No task retry field: the provider's single-task shape, every notebook argument, templated params.
dag_dbxn_notebook_like_provider = _side_by_side(
    "dbxn_notebook_like_provider",
    (provider.DatabricksNotebookOperator, DatabricksNotebookOperator),
    {
        "notebook_path": "/jobs/etl",
        "source": "WORKSPACE",
        "notebook_params": {"day": "{{ params.day }}", "emulator.duration_seconds": "0.5"},
        "notebook_packages": [{"pypi": {"package": "simplejson==3.19.3"}}],
        "new_cluster": CLUSTER,
        "databricks_task_key": "etl_key",
        "execution_timeout": timedelta(minutes=20),
    },
)

# Templated task retry fields: the task goes into ``tasks`` with its task_key.
dag_dbxn_notebook_retries_like_provider = _side_by_side(
    "dbxn_notebook_retries_like_provider",
    (provider.DatabricksNotebookOperator, DatabricksNotebookOperator),
    {
        "notebook_path": "/jobs/etl",
        "source": "WORKSPACE",
        "notebook_params": {"emulator.duration_seconds": "0.5"},
        "existing_cluster_id": "0101-abc",
        "databricks_task_key": "etl_key",
        "max_retries": "{{ params.retries }}",
        "min_retry_interval_millis": 1000,
        "retry_on_timeout": "true",
    },
)

# A task_config with a retry field of its own, overridden by the named one.
dag_dbxn_task_like_provider = _side_by_side(
    "dbxn_task_like_provider",
    (provider.DatabricksTaskOperator, DatabricksTaskOperator),
    {
        "task_config": {
            "notebook_task": {
                "notebook_path": "/jobs/report",
                "base_parameters": {"day": "{{ params.day }}", "emulator.duration_seconds": "0.5"},
            },
            "max_retries": 5,
        },
        "existing_cluster_id": "0101-abc",
        "databricks_task_key": "report_key",
        "max_retries": 1,
    },
)

with _dag("dbxn_default_key") as dag_dbxn_default_key:
    DatabricksNotebookOperator(
        task_id="ours",
        notebook_path="/jobs/etl",
        source="WORKSPACE",
        notebook_params={"emulator.duration_seconds": "0.5"},
        existing_cluster_id="0101-abc",
        polling_period_seconds=0.2,
    )

for _fault in ("crash_after_submit", "crash_after_persist"):
    with _dag(f"dbxn_notebook_{_fault}") as _the_dag:
        faulty(DatabricksNotebookOperator, _fault)(
            task_id="etl",
            notebook_path="/jobs/etl",
            source="WORKSPACE",
            notebook_params={"emulator.duration_seconds": "0.5"},
            new_cluster=CLUSTER,
            polling_period_seconds=0.2,
        )
    globals()[f"dag_dbxn_notebook_{_fault}"] = _the_dag

    with _dag(f"dbxn_task_{_fault}") as _the_dag:
        faulty(DatabricksTaskOperator, _fault)(
            task_id="report",
            task_config={
                "notebook_task": {
                    "notebook_path": "/jobs/report",
                    "base_parameters": {"emulator.duration_seconds": "0.5"},
                }
            },
            existing_cluster_id="0101-abc",
            max_retries=1,
            polling_period_seconds=0.2,
        )
    globals()[f"dag_dbxn_task_{_fault}"] = _the_dag

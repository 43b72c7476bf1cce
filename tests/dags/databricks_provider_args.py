"""DAGs for the provider arguments beyond the named fields, run by tests/databricks/test_provider_arguments.

Where a DAG holds a task ``provider`` (the provider's own operator) beside ``ours`` with the same
arguments, the test compares the two requests on the wire: what we send is what the provider sends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.databricks.operators import databricks as provider
from airflow.sdk import DAG
from fault_injection import faulty

from resumable_triggers.databricks import DatabricksRunNowOperator, DatabricksSubmitRunOperator

PARAMS = {"region": "eu", "batch": 3, "skip": None, "tier": "STANDARD"}


def _dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=0)},
        **kwargs,
    )


for _fault in ("none", "crash_after_submit", "crash_after_persist"):
    with _dag(f"dbxp_cancel_previous_{_fault}") as _the_dag:
        faulty(DatabricksRunNowOperator, _fault)(
            task_id="nightly",
            job_name="long-job",
            notebook_params={"emulator.duration_seconds": "0.5"},
            cancel_previous_runs=True,
            polling_period_seconds=0.2,
        )
    globals()[f"dag_dbxp_cancel_previous_{_fault}"] = _the_dag

# The provider's runs go one after the other: each is a run of the same job.
_RUN_NOW = {
    "job_name": "short-job",
    "performance_target": "{{ params.tier }}",
    "openlineage_inject_parent_job_info": True,
}
with _dag("dbxp_run_now_like_provider", params=PARAMS) as dag_dbxp_run_now_like_provider:
    _theirs = provider.DatabricksRunNowOperator(
        task_id="provider", polling_period_seconds=1, deferrable=False, **_RUN_NOW
    )
    _ours = DatabricksRunNowOperator(task_id="ours", polling_period_seconds=0.2, **_RUN_NOW)
    _theirs >> _ours

with _dag("dbxp_run_now_without_forwarding", params=PARAMS) as dag_dbxp_run_now_without_forwarding:
    DatabricksRunNowOperator(
        task_id="ours", job_name="short-job", forward_dag_params=False, polling_period_seconds=0.2
    )

_SUBMIT = {
    "run_name": "forwarded",
    "tasks": [
        {"task_key": "empty", "notebook_task": {"notebook_path": "/a"}, "existing_cluster_id": "0101-abc"},
        {
            "task_key": "own",
            "notebook_task": {"notebook_path": "/b", "base_parameters": {"emulator.duration_seconds": "0.5"}},
            "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge"},
        },
        {
            "task_key": "listed",
            "spark_python_task": {"python_file": "/c.py"},
            "existing_cluster_id": "0101-abc",
        },
    ],
    "performance_target": "{{ params.tier }}",
    "openlineage_inject_parent_job_info": True,
    "openlineage_inject_transport_info": True,
}
with _dag("dbxp_submit_like_provider", params=PARAMS) as dag_dbxp_submit_like_provider:
    _theirs = provider.DatabricksSubmitRunOperator(
        task_id="provider", polling_period_seconds=1, deferrable=False, **_SUBMIT
    )
    _ours = DatabricksSubmitRunOperator(task_id="ours", polling_period_seconds=0.2, **_SUBMIT)
    _theirs >> _ours

"""A nightly Databricks job that survives worker evictions, deploys and triggerer restarts.

Three submitted runs (a notebook task and a Python task watched by the triggerer, one polled in the
worker), then ``publish_report`` runs an existing job and repairs it in place if it fails: only its
failed tasks run again, on the same run. Against the emulator (``scripts/demo``, the tests) each run
declares how long it takes through ``emulator.*`` parameters; a real workspace ignores them as
ordinary notebook parameters.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG

from resumable_triggers.databricks import (
    DatabricksNotebookOperator,
    DatabricksRunNowOperator,
    DatabricksSubmitRunOperator,
)

RUN_SECONDS = os.environ.get("EXAMPLE_RUN_SECONDS", "15")

with DAG(
    dag_id="example_databricks",
    schedule=None,
    catchup=False,
    tags=["resumable-triggers", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
):
    etl = DatabricksSubmitRunOperator(
        task_id="nightly_etl",
        databricks_conn_id="databricks_default",
        run_name="nightly etl {{ ds }}",
        notebook_task={
            "notebook_path": "/jobs/nightly_etl",
            "base_parameters": {"day": "{{ ds }}", "emulator.duration_seconds": RUN_SECONDS},
        },
        new_cluster={"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 2},
        polling_period_seconds=2,
    )

    # The same job polled from the worker: a SIGTERM there hands the run over to the triggerer.
    etl_in_worker = DatabricksSubmitRunOperator(
        task_id="nightly_etl_in_worker",
        tasks=[
            {
                "task_key": "aggregate",
                "spark_python_task": {
                    "python_file": "dbfs:/jobs/aggregate.py",
                    "parameters": ["--day={{ ds }}", f"emulator.duration_seconds={RUN_SECONDS}"],
                },
                "existing_cluster_id": "0101-123456-example",
            }
        ],
        polling_period_seconds=2,
        deferrable=False,
    )

    # The provider's one-task operator, standalone: a notebook on an existing cluster.
    features = DatabricksNotebookOperator(
        task_id="nightly_features",
        notebook_path="/jobs/nightly_features",
        source="WORKSPACE",
        databricks_task_key="nightly_features",
        notebook_params={"day": "{{ ds }}", "emulator.duration_seconds": RUN_SECONDS},
        existing_cluster_id="0101-123456-example",
        polling_period_seconds=2,
    )

    # A failed run of the report job is repaired (its failed tasks re-run on the same run), once.
    report = DatabricksRunNowOperator(
        task_id="publish_report",
        job_name="publish-report",
        notebook_params={"day": "{{ ds }}"},
        repair_run=True,
        polling_period_seconds=1,
    )

    [etl, etl_in_worker, features] >> report

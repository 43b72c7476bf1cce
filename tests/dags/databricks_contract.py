"""Databricks DAGs for the resume contract, run by tests/databricks against the emulator.

The connection ``databricks_default`` comes from the environment that the ``databricks_emulator_env``
fixture sets. Each run declares its own duration and outcome through ``emulator.*`` parameters.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG
from fault_injection import FaultOnFirstTry, faulty

from resumable_triggers.databricks import DatabricksRunNowOperator, DatabricksSubmitRunOperator


class FailFirstRun(FaultOnFirstTry):
    def after_first_submit(self, external_id: Any, context: Any) -> None:
        if self.fault == "first_run_fails":
            from resumable_triggers.testing import EmulatorControl

            # The workspace fails this run; the retry must submit a new one, not get this one back.
            EmulatorControl(os.environ["DATABRICKS_HOST"]).script_run(
                int(external_id), result_state="FAILED", duration_seconds=0.5, error="disk full"
            )
            return
        super().after_first_submit(external_id, context)


def notebook(seconds: float = 1.0) -> dict[str, Any]:
    return {"notebook_path": "/jobs/etl", "base_parameters": {"emulator.duration_seconds": str(seconds)}}


CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1}


def _dag(dag_id: str, *, retries: int = 2) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    )


for _fault, _seconds, _deferrable in [
    ("none", 1.0, True),
    ("crash_after_submit", 1.0, True),
    ("crash_after_persist", 1.0, True),
    ("crash_in_completion", 1.0, True),
    ("sigterm_before_defer", 1.0, True),
    ("sigterm_during_submit", 1.0, True),
    ("sigterm_while_polling", 2.0, False),
    ("first_run_fails", 1.0, True),
]:
    with _dag(f"dbx_{_fault}") as _the_dag:
        faulty(DatabricksSubmitRunOperator, _fault, FailFirstRun)(
            task_id="etl",
            notebook_task=notebook(_seconds),
            new_cluster=CLUSTER,
            polling_period_seconds=0.2,
            deferrable=_deferrable,
        )
    globals()[f"dag_dbx_{_fault}"] = _the_dag

with _dag("dbx_fails_every_time", retries=1) as dag_dbx_fails_every_time:
    DatabricksSubmitRunOperator(
        task_id="etl",
        tasks=[
            {
                "task_key": "ingest",
                "notebook_task": {
                    "notebook_path": "/jobs/ingest",
                    "base_parameters": {
                        "emulator.duration_seconds": "0.5",
                        "emulator.result_state": "FAILED",
                        "emulator.error": "table not found",
                    },
                },
                "existing_cluster_id": "0101-abc",
            }
        ],
        polling_period_seconds=0.2,
    )

with _dag("dbx_invalid_spec") as dag_dbx_invalid_spec:
    DatabricksSubmitRunOperator(
        task_id="etl",
        tasks=[{"notebook_task": {"notebook_path": "/x"}}],  # no task_key
        polling_period_seconds=0.2,
    )

with _dag("dbx_templated") as dag_dbx_templated:
    DatabricksSubmitRunOperator(
        task_id="etl",
        json={"run_name": "nightly {{ dag.dag_id }}", "timeout_seconds": 600},
        notebook_task={
            "notebook_path": "/jobs/{{ dag.dag_id }}",
            "base_parameters": {"emulator.duration_seconds": "0.5", "day": "{{ ds }}"},
        },
        existing_cluster_id="0101-abc",
        polling_period_seconds=0.2,
    )

with _dag("dbx_run_now") as dag_dbx_run_now:
    DatabricksRunNowOperator(
        task_id="nightly",
        job_name="nightly-etl",
        notebook_params={"emulator.duration_seconds": "0.5", "day": "{{ ds }}"},
        polling_period_seconds=0.2,
    )

with _dag("dbx_execution_timeout", retries=0) as dag_dbx_execution_timeout:
    DatabricksSubmitRunOperator(
        task_id="etl",
        notebook_task=notebook(60.0),
        existing_cluster_id="0101-abc",
        polling_period_seconds=0.2,
        deferrable=False,
        execution_timeout=timedelta(seconds=2),
    )

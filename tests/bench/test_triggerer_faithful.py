"""A seeded deferral is what a real one writes: ``bench-triggerer`` measures what Airflow really runs.

One real Airflow (PostgreSQL, scheduler, DAG processor, triggerer) runs a DAG whose two tasks defer
for real: our operator on ``DatabricksRunTrigger``, the provider's on ``DatabricksExecutionTrigger``,
against the emulator. Then ``_seed`` defers one task instance of each through Airflow's models, as
the bench does, and the two rows are compared: state, trigger classpath, the stored kwargs (plain
JSON, the same keys with values of the same types), next_method, next_kwargs, timeout and queue.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from resumable_triggers._bench._triggerer._deployment import (
    DAG_ID,
    SeedProcess,
    new_fernet_key,
    write_dags_folder,
)
from resumable_triggers._bench._workload import RunPlan, submit_runs
from resumable_triggers.testing import EmulatorProcess, airflow_connection
from resumable_triggers.testing.airflow import AirflowDeployment

pytestmark = pytest.mark.timeout(240)

REAL_DAG = """
import datetime as dt

from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator as ProviderSubmit
from airflow.sdk import DAG

from resumable_triggers.databricks import DatabricksSubmitRunOperator

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
OPERATORS = (("ours", DatabricksSubmitRunOperator, {}), ("provider", ProviderSubmit, {"deferrable": True}))

with DAG(dag_id="bench_real_deferral", schedule=None, start_date=START):
    for task_id, operator, extra in OPERATORS:
        operator(
            task_id=task_id,
            run_name="real {{ run_id }}",
            notebook_task={
                "notebook_path": "/bench",
                "base_parameters": {"emulator.duration_seconds": "600"},
            },
            new_cluster={"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1},
            polling_period_seconds=1,
            **extra,
        )
"""

# What a seeded row must share with a real one (the values of the kwargs differ: run ids, URLs).
SHAPE = (
    "state",
    "has_trigger",
    "classpath",
    "stored_kwargs_plain_json",
    "stored_kwargs_shape",
    "next_method",
    "next_kwargs",
    "trigger_timeout_set",
    "queue",
)


def test_seeded_deferral_matches_a_real_one(tmp_path: Path) -> None:
    """For both triggers, the row a real deferral wrote and the row ``_seed`` wrote agree in shape."""
    dags = write_dags_folder(tmp_path / "dags")
    (dags / "bench_real_deferral.py").write_text(REAL_DAG)
    key = new_fernet_key()
    with (
        EmulatorProcess(run_seconds=600.0) as emulator,
        AirflowDeployment(
            dags_folder=dags,
            database="postgres",
            components=("api-server", "scheduler", "dag-processor", "triggerer"),
            connections={"databricks_default": airflow_connection(emulator.url, emulator.token)},
            env={"AIRFLOW__CORE__FERNET_KEY": key},
        ) as af,
    ):
        af.rest.wait_for_dag("bench_real_deferral")
        af.rest.wait_for_dag(DAG_ID)
        run_id = af.rest.trigger_dag_run("bench_real_deferral")
        for task_id in ("ours", "provider"):
            af.rest.wait_for_task_state("bench_real_deferral", run_id, task_id, states={"deferred"})
        plan = RunPlan(ends_at=(time.time() + 600,), outcomes=("SUCCESS",))
        [databricks_run] = asyncio.run(submit_runs(emulator.url, emulator.token, plan))
        with SeedProcess(database_url=af.database_url, fernet_key=key, workdir=tmp_path) as seeder:
            pairs = {}
            for task_id in ("ours", "provider"):
                seeder.call(
                    "seed",
                    dag_id=DAG_ID,
                    task_id=task_id,
                    implementation=task_id,
                    run_ids=[databricks_run],
                    run_prefix=f"faithful-{task_id}",
                    poll_seconds=1.0,
                    workspace_url=emulator.url,
                )
                real = seeder.call("rows", dag_id="bench_real_deferral", run_id=run_id, task_id=task_id)
                seeded = seeder.call("rows", dag_id=DAG_ID, run_id=f"faithful-{task_id}-0", task_id=task_id)
                pairs[task_id] = ({k: real[k] for k in SHAPE}, {k: seeded[k] for k in SHAPE})

    for task_id, (real, seeded) in pairs.items():
        assert real == seeded, task_id
    assert "resumable_triggers.databricks.DatabricksRunTrigger" == pairs["ours"][0]["classpath"]
    assert (
        "airflow.providers.databricks.triggers.databricks.DatabricksExecutionTrigger"
        == pairs["provider"][0]["classpath"]
    )
    assert ("deferred", True, "execute_complete") == (
        pairs["ours"][0]["state"],
        pairs["ours"][0]["has_trigger"],
        pairs["ours"][0]["next_method"],
    )

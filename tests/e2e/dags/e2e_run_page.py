"""A mapped Databricks task, for the browser test of the run link (tests/e2e/test_run_page_browser.py).

``e2e_dbx_mapped``: task ``etl`` expanded over two notebook tasks, so each map index submits a run of
its own, named ``e2e <dag run id> #<map index>``. The runs last 600 s: the test ends them through the
emulator's control API, so no timing depends on machine speed.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from resumable_triggers.databricks import DatabricksSubmitRunOperator

with DAG(
    dag_id="e2e_dbx_mapped",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    DatabricksSubmitRunOperator.partial(
        task_id="etl",
        run_name="e2e {{ run_id }} #{{ ti.map_index }}",
        new_cluster={"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1},
        polling_period_seconds=1,
    ).expand(
        notebook_task=[
            {"notebook_path": f"/jobs/e2e-{part}", "base_parameters": {"emulator.duration_seconds": "600"}}
            for part in ("orders", "customers")
        ]
    )

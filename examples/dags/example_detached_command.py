"""A non-Databricks job that survives worker restarts: the same resume machinery, another system."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta

from airflow.sdk import DAG
from detached_command import DetachedCommandOperator

with DAG(
    dag_id="example_detached_command",
    schedule=None,
    catchup=False,
    tags=["resumable-triggers", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1)},
):
    DetachedCommandOperator(
        task_id="sleep_then_succeed",
        command=["sleep", "2"],
        root=os.environ.get(
            "DETACHED_COMMAND_ROOT", os.path.join(tempfile.gettempdir(), "detached-command-jobs")
        ),
        polling_period_seconds=1,
    )

"""Databricks DAGs for the client-fault tests (tests/e2e/test_client_faults.py).

One task ``etl`` each, watched by the triggerer, on the connection the DAG run names in its conf
(``conn_id``): the tests create those connections in Airflow's metadata database through the REST
API, so that rotating one is seen by a running triggerer (``AIRFLOW_CONN_*`` variables are not).

- ``e2e_dbx_conn``: no execution timeout, one immediate retry;
- ``e2e_dbx_conn_slow_retry``: the same, the retry 10 s later (time for a test to fix the cause);
- ``e2e_dbx_conn_timeout``: ``execution_timeout`` 20 s, no retry.

Runs are named ``e2e <dag run id>`` and last ``run_seconds`` (conf, default 600), as in e2e_databricks.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from resumable_triggers.databricks import DatabricksSubmitRunOperator

EXECUTION_TIMEOUT_SECONDS = 20

for _dag_id, _retries, _retry_delay, _timeout in [
    ("e2e_dbx_conn", 1, 0, None),
    ("e2e_dbx_conn_slow_retry", 1, 10, None),
    ("e2e_dbx_conn_timeout", 0, 0, dt.timedelta(seconds=EXECUTION_TIMEOUT_SECONDS)),
]:
    with DAG(
        dag_id=_dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        default_args={"retries": _retries, "retry_delay": dt.timedelta(seconds=_retry_delay)},
    ) as _the_dag:
        DatabricksSubmitRunOperator(
            task_id="etl",
            databricks_conn_id="{{ dag_run.conf['conn_id'] }}",
            run_name="e2e {{ run_id }}",
            notebook_task={
                "notebook_path": "/jobs/e2e",
                "base_parameters": {
                    "emulator.duration_seconds": "{{ dag_run.conf.get('run_seconds', 600) }}"
                },
            },
            new_cluster={"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1},
            polling_period_seconds=1,
            execution_timeout=_timeout,
        )
    globals()[_dag_id] = _the_dag

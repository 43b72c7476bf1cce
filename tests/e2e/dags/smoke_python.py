"""A plain PythonOperator: proves the deployment runs an ordinary task and hands it its connections."""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Connection


def _greet() -> dict[str, str]:
    print("e2e-smoke-python: hello from the task process")
    return {"greeting": "hello", "connection_host": str(Connection.get("e2e_smoke").host)}


with DAG(
    dag_id="e2e_smoke_python",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    PythonOperator(task_id="greet", python_callable=_greet)

"""A task whose first try blocks until killed and whose retry succeeds at once.

A test kills the first try's task process; the retry returning its try number proves the task was
retried rather than left running.
"""

from __future__ import annotations

import datetime as dt
import time

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def _block_on_first_try(ti) -> int:
    if ti.try_number == 1:
        time.sleep(300)
    return ti.try_number


with DAG(
    dag_id="e2e_smoke_retry",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    PythonOperator(
        task_id="block",
        python_callable=_block_on_first_try,
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
    )

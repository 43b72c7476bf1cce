"""A deferrable sensor that waits in the triggerer.

The wait is 20 s from the run's start: long enough to dodge Airflow's "trigger fires right after
deferring" race and to kill and restart the triggerer while the task is deferred.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG

with DAG(
    dag_id="e2e_smoke_deferrable",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    TimeDeltaSensor(task_id="wait", delta=dt.timedelta(seconds=20), deferrable=True)

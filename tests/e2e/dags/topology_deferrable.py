"""A deferrable sensor that waits 40 s in a triggerer: long enough to freeze the triggerer holding it
and watch another take it over (5 s health threshold, then ~2 s until it is picked up) well before
it fires."""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG

with DAG(
    dag_id="e2e_topology_deferrable",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    TimeDeltaSensor(task_id="wait", delta=dt.timedelta(seconds=40), deferrable=True)

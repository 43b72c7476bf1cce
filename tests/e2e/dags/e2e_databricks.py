"""Databricks DAGs for the end-to-end fault matrix (tests/e2e/test_databricks_faults.py).

Four DAGs, one task each: ``e2e_dbx_deferred`` (watched by the triggerer, the operator's default),
``e2e_dbx_in_worker`` (``deferrable=False``: the worker polls), ``e2e_dbx_patient`` (deferred, retried
20 s after a failure, as production waits minutes: an outage of Airflow itself then cannot burn every
try before it is over) and ``e2e_dbx_budget`` (deferred, polled every 0.25 s on a budget of one request
a second for the workspace: it wants far more than it may send). Each DAG run says through its
``conf``:

- ``run_seconds``: how long its Databricks run lasts (default 600: tests finish runs through the
  emulator's control API once the fault they test is over, so no timing depends on machine speed);
- ``pause``: ``{point: [try numbers]}``, where the task stops and waits to be killed or released.

Each run is named ``e2e <dag run id>``, so a test counts exactly the runs its own DAG run created.

A pause is a test-only window-opener (the operator under test is unchanged apart from it): the task
writes ``<E2E_GATES_DIR>/<dag run id>/<point>.try<N>.reached`` holding its PID, then waits, without
any log line or supervisor call, until ``<point>.release`` appears or it is killed. Points:

- ``before_decide``: in ``prepare``, before the resume decision and before any guarded window (a
  SIGTERM here reaches Airflow's own handler, as while the task still parses its DAG file);
- ``before_submit``: the resume record (with its idempotency token) is stored, nothing submitted yet;
- ``after_submit``: the run was submitted; the record does not name it yet;
- ``before_defer``: the record names the run and the watch marker is pushed; the deferral is next;
- ``in_completion``: in ``execute_complete``, after the record noted the success, before the task
  returned (pushed ``return_value``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG
from e2e_gates import pause_if_asked

from resumable_triggers.databricks import DatabricksSubmitRunOperator
from resumable_triggers.resume import ExternalId, JobEvent


class PausableSubmitRunOperator(DatabricksSubmitRunOperator):
    """The library's operator, plus the test-only pauses named above."""

    def prepare(self, context: Any) -> None:
        pause_if_asked("before_decide", context)
        super().prepare(context)

    async def submit_job(self, token: str, context: Any) -> ExternalId:
        pause_if_asked("before_submit", context)
        external_id = await super().submit_job(token, context)
        pause_if_asked("after_submit", context)
        return external_id

    def defer(self, **kwargs: Any) -> Any:
        from airflow.sdk import get_current_context

        pause_if_asked("before_defer", get_current_context())
        return super().defer(**kwargs)

    def job_result(self, context: Any, event: JobEvent) -> Any:
        pause_if_asked("in_completion", context)
        return super().job_result(context, event)


# The deferred DAG relies on the operator's default (deferrable): a real deployment's generated
# airflow.cfg spells out ``default_deferrable = false``, which must not turn deferral off.
_VARIANTS: list[tuple[str, dict[str, Any], int]] = [  # DAG id, operator arguments, retry delay (s)
    ("e2e_dbx_deferred", {}, 0),
    ("e2e_dbx_in_worker", {"deferrable": False}, 0),
    ("e2e_dbx_patient", {}, 20),
    ("e2e_dbx_budget", {"requests_per_second": 1.0, "polling_period_seconds": 0.25}, 0),
]
for _dag_id, _variant, _retry_delay in _VARIANTS:
    with DAG(
        dag_id=_dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=_retry_delay)},
    ) as _the_dag:
        PausableSubmitRunOperator(
            task_id="etl",
            run_name="e2e {{ run_id }}",
            notebook_task={
                "notebook_path": "/jobs/e2e",
                "base_parameters": {
                    "emulator.duration_seconds": "{{ dag_run.conf.get('run_seconds', 600) }}"
                },
            },
            new_cluster={"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1},
            **{"polling_period_seconds": 1, **_variant},
        )
    globals()[_dag_id] = _the_dag

"""Run-now DAGs with ``repair_run``, run by tests/databricks/test_repair_run.py against the emulator.

Each triggers the job ``repair-etl`` (created by the test: tasks ``ingest`` and ``publish``). The
first run of a DAG run is made to fail (its ``publish`` task, through the emulator's control API), so
its repair re-runs ``publish`` alone, which then succeeds as the job's spec declares; ``crash_*``
faults kill try 1 inside the repair, before the request is sent or after it was accepted.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG
from fault_injection import SimulatedCrash, first_try

from resumable_triggers.databricks import DatabricksRunNowOperator

JOB = "repair-etl"


class FailFirstThenCrash(DatabricksRunNowOperator):
    """The first run fails at the workspace; ``fault`` says where try 1 dies inside its repair."""

    fault = "none"

    async def submit_job(self, token: str, context: Any) -> Any:
        run_id = await super().submit_job(token, context)
        if first_try():
            from resumable_triggers.testing import EmulatorControl

            # A person cancelling the run at the workspace is the one failure never repaired.
            outcome = "CANCELED" if self.fault == "cancelled_at_workspace" else "FAILED"
            EmulatorControl(os.environ["DATABRICKS_HOST"]).script_run(
                int(run_id), result_state=outcome, duration_seconds=0.5, error="disk full on /local_disk0"
            )
        return run_id

    async def repair_job(self, external_id: Any, *, after: int | None, status: Any) -> int:
        if first_try() and self.fault == "crash_before_repair_sent":
            raise SimulatedCrash("worker died after storing the repair intent, before runs/repair")
        repair_id = await super().repair_job(external_id, after=after, status=status)
        if first_try() and self.fault == "crash_after_repair_accepted":
            raise SimulatedCrash("worker died after runs/repair was accepted, before re-deferring")
        return repair_id


def _dag(dag_id: str, *, retries: int = 1) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    )


for _dag_id, _fault, _arguments in [
    ("dbx_repair", "none", {}),
    ("dbx_repair_in_worker", "none", {"deferrable": False}),
    ("dbx_repair_crash_before_sent", "crash_before_repair_sent", {}),
    ("dbx_repair_crash_after_accepted", "crash_after_repair_accepted", {}),
    ("dbx_repair_cancelled", "cancelled_at_workspace", {}),
    (
        "dbx_repair_reason_matches",
        "none",
        {"databricks_repair_reason_new_settings": {"disk full": {"max_concurrent_runs": 3}}},
    ),
    (
        "dbx_repair_reason_differs",
        "none",
        {"databricks_repair_reason_new_settings": {"quota": {"max_concurrent_runs": 3}}},
    ),
]:
    with _dag(_dag_id, retries=0 if "reason" in _dag_id else 1) as _the_dag:
        type(f"Faulty{_fault}", (FailFirstThenCrash,), {"fault": _fault})(
            task_id="nightly",
            job_name=JOB,
            job_parameters={"day": "{{ ds }}"},
            repair_run=True,
            polling_period_seconds=0.2,
            **_arguments,
        )
    globals()[_dag_id] = _the_dag

# Every run of this job fails, repaired or not: the one repair allowed is spent, then the retry
# replaces the run, and its repair is spent too.
with _dag("dbx_repair_spent", retries=1) as dag_dbx_repair_spent:
    DatabricksRunNowOperator(
        task_id="nightly",
        job_name="always-fails",
        repair_run=True,
        polling_period_seconds=0.2,
    )

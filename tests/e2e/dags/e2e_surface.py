"""DAGs for the end-to-end tests of the one-task operators and of repair (tests/e2e/test_surface.py).

One task ``etl`` each:

- ``e2e_dbx_notebook``: ``DatabricksNotebookOperator`` standalone, deferred;
- ``e2e_dbx_task``: ``DatabricksTaskOperator`` with a ``spark_python_task``, deferred;
- ``e2e_dbx_repair``: ``DatabricksRunNowOperator(repair_run=True)`` of the job ``e2e-repair`` (the
  test creates it), deferred;
- ``e2e_dbx_repair_in_worker``: the same, polled in the worker (``deferrable=False``).

Runs last ``run_seconds`` (conf, default 600) and tests end them through the emulator's control API.
The pauses are those of ``e2e_databricks`` (``after_submit``, ``before_defer``) plus two inside a
repair: ``before_repair`` (the repair intent is stored, ``runs/repair`` is next) and ``after_repair``
(``runs/repair`` was accepted, watching the repaired run is next).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, get_current_context
from e2e_gates import pause_if_asked

from resumable_triggers.databricks import (
    DatabricksNotebookOperator,
    DatabricksRunNowOperator,
    DatabricksTaskOperator,
)
from resumable_triggers.resume import ExternalId, JobStatus

REPAIR_JOB = "e2e-repair"
RUN_SECONDS = "{{ dag_run.conf.get('run_seconds', 600) }}"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1}


class Pauses:
    """The test-only pauses, mixed into each operator under test (no ``__init__``: see faulty())."""

    async def submit_job(self, token: str, context: Any) -> ExternalId:
        external_id = await super().submit_job(token, context)  # type: ignore[misc]
        pause_if_asked("after_submit", context)
        return external_id

    def defer(self, **kwargs: Any) -> Any:
        pause_if_asked("before_defer", get_current_context())
        return super().defer(**kwargs)  # type: ignore[misc]

    async def repair_job(self, external_id: ExternalId, *, after: int | None, status: JobStatus) -> int:
        pause_if_asked("before_repair", get_current_context())
        repair_id = await super().repair_job(external_id, after=after, status=status)  # type: ignore[misc]
        pause_if_asked("after_repair", get_current_context())
        return repair_id


def pausable(base: type) -> type:
    return type(f"Pausable{base.__name__}", (Pauses, base), {})


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=0)},
    )


with _dag("e2e_dbx_notebook") as e2e_dbx_notebook:
    pausable(DatabricksNotebookOperator)(
        task_id="etl",
        notebook_path="/jobs/e2e",
        source="WORKSPACE",
        notebook_params={"emulator.duration_seconds": RUN_SECONDS, "day": "{{ run_id }}"},
        new_cluster=CLUSTER,
        polling_period_seconds=1,
    )

with _dag("e2e_dbx_task") as e2e_dbx_task:
    pausable(DatabricksTaskOperator)(
        task_id="etl",
        task_config={
            "spark_python_task": {
                "python_file": "dbfs:/jobs/e2e.py",
                "parameters": ["--day={{ run_id }}", f"emulator.duration_seconds={RUN_SECONDS}"],
            }
        },
        existing_cluster_id="0101-123456-e2e",
        polling_period_seconds=1,
    )

for _dag_id, _deferrable in [("e2e_dbx_repair", True), ("e2e_dbx_repair_in_worker", False)]:
    with _dag(_dag_id) as _the_dag:
        pausable(DatabricksRunNowOperator)(
            task_id="etl",
            job_name=REPAIR_JOB,
            job_parameters={"day": "{{ run_id }}"},
            repair_run=True,
            polling_period_seconds=1,
            deferrable=_deferrable,
        )
    globals()[_dag_id] = _the_dag

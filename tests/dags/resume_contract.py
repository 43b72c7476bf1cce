"""DAGs that die at chosen points of their first try, to prove the resume contract through Airflow.

Each DAG runs the detached-command example operator with retries; ``fault`` names where try 1 dies.
A "crash" is an exception (dag.test() runs tasks in-process, so the worker cannot really die here:
the real-process kills are in tests/e2e); "sigterm" sends a real SIGTERM to this process.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG
from detached_command import DetachedCommandOperator

JOBS_ROOT = os.path.join(os.environ["AIRFLOW_HOME"], "detached-jobs")


class SimulatedCrash(RuntimeError):
    """Stands in for a worker dying at this point."""


class FaultyDetachedCommandOperator(DetachedCommandOperator):
    def __init__(self, *, fault: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fault = fault
        self._status_reads = 0

    def _first_try(self) -> bool:
        from airflow.sdk import get_current_context

        return get_current_context()["ti"].try_number == 1

    async def submit_job(self, token: str, context: Any) -> Any:
        external_id = await super().submit_job(token, context)
        if self.fault == "crash_after_submit" and self._first_try():
            raise SimulatedCrash("worker died after submit, before the run id was persisted")
        if self.fault == "foreign_record_then_crash" and self._first_try():
            context["task_state_store"].set(self.resume_key, {"written_by": "someone else"})
            raise SimulatedCrash("worker died; the record was overwritten by something else")
        if self.fault == "newer_record_then_crash" and self._first_try():
            from resumable_triggers.resume._record import SCHEMA

            context["task_state_store"].set(self.resume_key, {"schema": SCHEMA, "version": 99})
            raise SimulatedCrash("worker died; a newer library version wrote the record")
        return external_id

    async def job_status(self, external_id: Any) -> Any:
        self._status_reads += 1
        if self._first_try():
            if self.fault == "crash_after_persist":
                raise SimulatedCrash("worker died after persisting the run id, before deferring")
            if self.fault == "sigterm_before_defer" or (
                self.fault == "sigterm_while_polling" and self._status_reads == 2
            ):
                os.kill(os.getpid(), signal.SIGTERM)
        return await super().job_status(external_id)

    def job_result(self, context: Any, event: Any) -> Any:
        if self.fault == "crash_in_completion" and self._first_try():
            raise SimulatedCrash("worker died in the completion method")
        return super().job_result(context, event)


def _dag(dag_id: str, fault: str, command: list[str], *, deferrable: bool = True, retries: int = 2) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    ) as dag:
        FaultyDetachedCommandOperator(
            task_id="job",
            fault=fault,
            command=command,
            root=os.path.join(JOBS_ROOT, dag_id),
            polling_period_seconds=0.2,
            deferrable=deferrable,
        )
    return dag


SLEEP = ["sleep", "1"]
# Fails the first time it runs in this Airflow home, succeeds afterwards.
FAIL_ONCE = ["sh", "-c", 'test -f "$0" || { touch "$0"; exit 3; }', os.path.join(JOBS_ROOT, "failed-once")]

for _fault, _command, _deferrable in [
    ("none", SLEEP, True),
    ("crash_after_submit", SLEEP, True),
    ("crash_after_persist", SLEEP, True),
    ("crash_in_completion", SLEEP, True),
    ("sigterm_before_defer", SLEEP, True),
    ("sigterm_while_polling", ["sleep", "2"], False),
    ("none_in_worker", SLEEP, False),
    ("fails_once", FAIL_ONCE, True),
    ("foreign_record_then_crash", SLEEP, True),
    ("newer_record_then_crash", SLEEP, True),
]:
    globals()[f"dag_{_fault}"] = _dag(f"resume_{_fault}", _fault, _command, deferrable=_deferrable)

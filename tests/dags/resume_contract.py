"""DAGs that die at chosen points of their first try, to prove the resume contract through Airflow.

Each DAG runs the detached-command example operator with retries; ``fault`` names where try 1 dies
(see fault_injection.py).
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG
from detached_command import DetachedCommandOperator
from fault_injection import faulty

JOBS_ROOT = os.path.join(os.environ["AIRFLOW_HOME"], "detached-jobs")


def _dag(dag_id: str, fault: str, command: list[str], *, deferrable: bool = True, retries: int = 2) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=0)},
    ) as dag:
        faulty(DetachedCommandOperator, fault)(
            task_id="job",
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

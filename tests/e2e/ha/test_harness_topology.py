"""The harness's production-like topology itself (PostgreSQL, two schedulers, two triggerers, Celery
on Redis): its process map, its faults (freezing a triggerer or only its trigger runner, finding a
try's processes on the Celery worker) and restarting the database and the broker, on the package's
one HA deployment. ``stop()`` leaving nothing is asserted by the package fixture."""

from __future__ import annotations

import signal

import psutil
import pytest
from e2e_testkit import DatabricksE2E

pytestmark = pytest.mark.e2e

TRIGGERERS = {"triggerer[0]", "triggerer[1]"}


@pytest.mark.timeout(420)
def test_ha_topology_survives_frozen_triggerer_and_restarted_database_and_broker(ha: DatabricksE2E) -> None:
    """On PostgreSQL + 2 schedulers + 2 triggerers + Celery: a deferred task's trigger is held by a
    triggerer that ``component_of_job`` names; frozen whole (SIGSTOP), that triggerer loses the trigger
    to the other one, which fires it, and the task succeeds in its first try. A try on the Celery
    worker is found by ``task_processes`` (supervisor and task process); SIGKILLed, it is retried.
    Pausing only a triggerer's trigger runner leaves its supervisor running.
    After PostgreSQL and Redis restart, a new DAG run still succeeds, and ``stop()`` leaves nothing."""
    af = ha.airflow
    assert {"postgres", "redis", "scheduler[0]", "scheduler[1]", "celery-worker"} <= set(af.pids())
    assert TRIGGERERS <= set(af.pids())
    af.rest.wait_for_dag("e2e_topology_deferrable", timeout_seconds=120)
    deferred_run = af.rest.trigger_dag_run("e2e_topology_deferrable")

    def holder(not_job: int | None = None) -> int | None:
        ti = af.rest.task_instance("e2e_topology_deferrable", deferred_run, "wait")
        job = (ti.get("triggerer_job") or {}).get("id")
        return job if job not in (None, not_job) else None

    first_job = af.wait_for("a triggerer to take the trigger", holder, timeout_seconds=120)
    frozen = af.faults.component_of_job(first_job)
    frozen_pids = af.faults.pause(frozen)
    second_job = af.wait_for("the other triggerer to take it over", lambda: holder(first_job))
    taken_over_by = af.faults.component_of_job(second_job)
    assert af.faults.resume(frozen) == frozen_pids
    done = af.rest.wait_for_task_state("e2e_topology_deferrable", deferred_run, "wait", states={"success"})

    assert frozen in TRIGGERERS
    assert TRIGGERERS - {frozen} == {taken_over_by}
    assert all(psutil.Process(pid).status() != psutil.STATUS_STOPPED for pid in frozen_pids)
    assert {} == af.faults.paused()
    assert 1 == done["try_number"]

    [runner] = af.faults.pause(taken_over_by, role="trigger-runner")
    runner_status = psutil.Process(runner).status()
    main_status = psutil.Process(af.pids()[taken_over_by]).status()
    assert [runner] == af.faults.resume(taken_over_by)
    assert psutil.STATUS_STOPPED == runner_status
    assert psutil.STATUS_STOPPED != main_status

    af.rest.wait_for_dag("e2e_smoke_retry")
    retry_run = af.rest.trigger_dag_run("e2e_smoke_retry")
    found = af.faults.wait_for_task_processes("e2e_smoke_retry", retry_run, "block", timeout_seconds=120)
    assert found.task_pid is not None
    assert "celery-worker" == found.component
    assert found.supervisor_pid == psutil.Process(found.task_pid).ppid()
    psutil.Process(found.task_pid).send_signal(signal.SIGKILL)
    retried = af.rest.wait_for_task_state("e2e_smoke_retry", retry_run, "block", states={"success"})
    assert 2 == retried["try_number"]

    af.restart("postgres")
    af.restart("redis")
    af.rest.wait_for_dag("e2e_smoke_python")
    python_run = af.rest.trigger_dag_run("e2e_smoke_python")
    af.rest.wait_for_dag_run_state("e2e_smoke_python", python_run, states={"success"}, timeout_seconds=120)

    assert {"greeting": "hello", "connection_host": "connection-from-the-harness.invalid"} == af.rest.xcom(
        "e2e_smoke_python", python_run, "greet"
    )

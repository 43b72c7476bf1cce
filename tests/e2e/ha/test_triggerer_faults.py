"""The distributed fault matrix, part one: triggerers, schedulers, the database and the broker of the
production topology (PostgreSQL, two schedulers, two triggerers, Celery workers on Redis) struck where a
single node has no equivalent, and still exactly one Databricks run per logical attempt, and no
``runs/cancel`` without a user's act. Part two, the workers and the API server: ``test_worker_faults``.

Each test checks what the single-node matrix checks (``test_databricks_faults.py``): the task's final
state and try, every run of its DAG run and how it ended (read from the emulator), no run left active,
the XCom ``run_id``; and here also that nothing was cancelled unless a user acted.
"""

from __future__ import annotations

import signal
import time

import pytest
from e2e_testkit import DatabricksE2E

from ._kit import (
    DEFERRED,
    TRIGGERERS,
    heartbeat_after,
    holder_of,
    restarting_the_dead,
    taken_over,
    trigger_logs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_triggerer_sigkilled_its_triggers_move_to_the_other_one(ha: DatabricksE2E) -> None:
    """The triggerer holding the trigger is SIGKILLed: the other triggerer takes it over once the
    health threshold passed, watches the same run, and the task succeeds in its first try."""
    dag_run = ha.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    old_job, holder = holder_of(dag_run)
    [run] = dag_run.runs()

    ha.airflow.faults.kill(holder, signal.SIGKILL, whole_tree=True)
    taken_over(dag_run, old_job)
    ha.wait_for_requests(more_than=ha.requests())
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")
    ha.airflow.restart(holder)

    dag_run.assert_succeeded_on_one_run(run["run_id"])


def test_triggerer_stalled_past_threshold_cancels_nothing_when_it_wakes(ha: DatabricksE2E) -> None:
    """The triggerer holding the trigger is frozen (SIGSTOP, its whole process tree) past the health
    threshold, so its trigger moves to the other triggerer; then it wakes (SIGCONT) and Airflow has it
    run ``on_kill`` for the trigger it lost. The run is not cancelled: one run, no ``runs/cancel``,
    and the task succeeds in its first try (apache/airflow#73454)."""
    dag_run = ha.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    old_job, holder = holder_of(dag_run)
    [run] = dag_run.runs()

    ha.airflow.faults.pause(holder)
    try:
        taken_over(dag_run, old_job)
        ha.wait_for_requests(more_than=ha.requests())  # the new owner polls the run
    finally:
        woke_at = time.time()
        ha.airflow.faults.resume(holder)
    heartbeat_after(ha.airflow, holder, woke_at)
    ha.wait_for_requests(more_than=ha.requests())
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    dag_run.assert_succeeded_on_one_run(run["run_id"])
    # The woken triggerer did run on_kill for the trigger it lost (the fault really happened), and
    # our trigger said why it kept the run.
    assert "the trigger was reassigned to another triggerer" in trigger_logs(dag_run, old_job)


def test_both_triggerers_sigkilled_one_restarted_later_picks_every_run_up(ha: DatabricksE2E) -> None:
    """Both triggerers are SIGKILLed while two tasks are deferred; only one is started again, later:
    it picks both triggers up, and each task succeeds on its one run."""
    dag_runs = [ha.start(DEFERRED), ha.start(DEFERRED)]
    for dag_run in dag_runs:
        dag_run.wait_for_deferred_and_watched()
    runs = [dag_run.runs()[0] for dag_run in dag_runs]

    for triggerer in TRIGGERERS:
        ha.airflow.faults.kill(triggerer, signal.SIGKILL, whole_tree=True)
    submitted = ha.control.counters().runs_submitted
    ha.airflow.restart(TRIGGERERS[1])
    for dag_run in dag_runs:
        ha.airflow.wait_for(
            "the restarted triggerer to take the trigger",
            lambda dag_run=dag_run: (
                ha.airflow.faults.component_of_job(job) == TRIGGERERS[1]
                if (job := dag_run.triggerer_job_id()) is not None
                else None
            ),
            timeout_seconds=90,
        )
    ha.wait_for_requests(more_than=ha.requests())
    for dag_run, run in zip(dag_runs, runs, strict=True):
        dag_run.finish_run(run["run_id"])
    for dag_run in dag_runs:
        dag_run.wait_for_state("success")
    ha.airflow.restart(TRIGGERERS[0])

    outcomes = [dag_run.outcome() for dag_run in dag_runs]
    assert [("success", 1, ["SUCCESS"], 2, [])] * 2 == [o.summary() for o in outcomes]
    assert ([r["run_id"] for r in runs], submitted, 0) == (
        [o.xcom_run_id for o in outcomes],
        ha.control.counters().runs_submitted,
        outcomes[-1].requests.get("runs/cancel", 0),
    )


def test_user_marks_task_failed_while_the_other_triggerer_holds_it_cancels_once(ha: DatabricksE2E) -> None:
    """A user marks a deferred task failed: whichever triggerer holds it cancels the run, exactly
    once, and the task stays failed."""
    dag_run = ha.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    holder_of(dag_run)
    [run] = dag_run.runs()

    ha.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
    dag_run.wait_for_run_terminal(run["run_id"])
    ha.wait_until_quiet(seconds=3.0, timeout_seconds=30)

    outcome = dag_run.outcome()
    assert ("failed", 1, ["CANCELED"], 1, []) == outcome.summary()
    assert (run["run_id"], 1) == (outcome.xcom_run_id, outcome.requests.get("runs/cancel", 0))


def test_user_marks_deferred_tasks_failed_and_success_while_no_triggerer_runs_them_cancels_each_run(
    ha: DatabricksE2E,
) -> None:
    """Both triggerers are frozen (SIGSTOP) while two tasks defer, so no triggerer ever runs their
    triggers; a user marks one failed and the other success. Airflow calls no ``on_kill`` for a trigger
    nobody runs: the API server's listener cancels each run, exactly once (the HA chaos campaign's seed
    60 found the run of such a task left going to its end)."""
    for triggerer in TRIGGERERS:
        ha.airflow.faults.pause(triggerer)
    try:
        dag_runs = [ha.start(DEFERRED), ha.start(DEFERRED)]
        for dag_run in dag_runs:
            dag_run.wait_for_state("deferred")
        runs = [dag_run.wait_for_runs(1)[0] for dag_run in dag_runs]
        assert [None, None] == [dag_run.triggerer_job_id() for dag_run in dag_runs]

        failed, succeeded = dag_runs
        ha.airflow.rest.mark_task_failed(failed.dag_id, failed.run_id, "etl")
        ha.airflow.rest.mark_task_success(succeeded.dag_id, succeeded.run_id, "etl")
        for dag_run, run in zip(dag_runs, runs, strict=True):
            dag_run.wait_for_run_terminal(run["run_id"])
    finally:
        for triggerer in TRIGGERERS:
            ha.airflow.faults.resume(triggerer)
    ha.wait_until_quiet(seconds=3.0, timeout_seconds=30)

    outcomes = [dag_run.outcome() for dag_run in dag_runs]
    assert [("failed", 1, ["CANCELED"], 2, []), ("success", 1, ["CANCELED"], 2, [])] == [
        o.summary() for o in outcomes
    ]
    assert 2 == outcomes[-1].requests.get("runs/cancel", 0)


def test_user_clears_a_deferred_task_while_no_triggerer_runs_it_the_next_try_cancels_the_old_run(
    ha: DatabricksE2E,
) -> None:
    """Both triggerers are frozen while the task defers; a user clears it. No ``on_kill`` runs for a
    trigger nobody runs, so the next try (a new clear cycle, which never adopts the old run) cancels
    the run left behind before it submits its own; then the triggerers wake and watch that one."""
    for triggerer in TRIGGERERS:
        ha.airflow.faults.pause(triggerer)
    try:
        dag_run = ha.start(DEFERRED)
        dag_run.wait_for_state("deferred")
        [old] = dag_run.wait_for_runs(1)
        ha.airflow.rest.clear_task(dag_run.dag_id, dag_run.run_id, "etl")
        dag_run.wait_for_run_terminal(old["run_id"])
        _, new = dag_run.wait_for_runs(2)
        dag_run.wait_for_try(2, "deferred")
    finally:
        for triggerer in TRIGGERERS:
            ha.airflow.faults.resume(triggerer)
    dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(new["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["CANCELED", "SUCCESS"], 2, []) == outcome.summary()
    assert (new["run_id"], 1) == (outcome.xcom_run_id, outcome.requests.get("runs/cancel", 0))


def test_scheduler_sigkilled_while_the_task_defers_and_while_it_resumes(ha: DatabricksE2E) -> None:
    """One scheduler is SIGKILLed right after the DAG run is triggered (the task is being scheduled
    and defers), the other while the run ends and the task resumes: the surviving scheduler carries
    each step, and the task succeeds on its one run in its first try."""
    dag_run = ha.start(DEFERRED)
    ha.airflow.faults.kill("scheduler[0]", signal.SIGKILL, whole_tree=True)
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()
    ha.airflow.restart("scheduler[0]")

    ha.airflow.faults.kill("scheduler[1]", signal.SIGKILL, whole_tree=True)
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")
    ha.airflow.restart("scheduler[1]")

    dag_run.assert_succeeded_on_one_run(run["run_id"])


def test_postgres_restarted_while_deferred_and_while_a_task_is_in_execute(ha: DatabricksE2E) -> None:
    """PostgreSQL restarts (fast shutdown) twice: while one task is deferred, and while another is
    inside ``execute()`` between storing its token and submitting. Every component that died of it is
    restarted, as an orchestrator would; each task still ends on exactly one run."""
    deferred = ha.start(DEFERRED)
    deferred.wait_for_deferred_and_watched()
    in_execute = ha.start(DEFERRED, pause={"before_submit": [1]})
    in_execute.wait_for_gate("before_submit")

    ha.airflow.restart("postgres")
    in_execute.release_gate("before_submit")
    for dag_run in (deferred, in_execute):
        restarting_the_dead(
            ha.airflow,
            f"{dag_run.run_id} to be deferred and watched",
            lambda d=dag_run: d.triggerer_job_id() if d.ti()["state"] == "deferred" else None,
        )
        dag_run.wait_for_deferred_and_watched()
        dag_run.finish_run(dag_run.wait_for_runs(1)[0]["run_id"])
    for dag_run in (deferred, in_execute):
        restarting_the_dead(
            ha.airflow,
            f"{dag_run.run_id} to succeed",
            lambda d=dag_run: True if d.ti()["state"] == "success" else None,
        )

    outcomes = [dag_run.outcome() for dag_run in (deferred, in_execute)]
    assert [["SUCCESS"], ["SUCCESS"]] == [o.run_results for o in outcomes]
    assert (["success", "success"], 2, 0) == (
        [o.state for o in outcomes],
        outcomes[-1].runs_submitted,
        outcomes[-1].requests.get("runs/cancel", 0),
    )


def test_redis_restarted_while_a_task_is_queued_still_runs_it_once(ha: DatabricksE2E) -> None:
    """The Celery broker restarts right after the DAG run is triggered, while its task is being queued:
    the task still runs, defers and succeeds on exactly one run."""
    dag_run = ha.start(DEFERRED)
    ha.airflow.restart("redis")
    ha.airflow.ensure_running()
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    dag_run.assert_succeeded_on_one_run(run["run_id"])

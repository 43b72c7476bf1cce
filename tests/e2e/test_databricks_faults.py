"""The fault matrix: a real scheduler, worker and triggerer, killed at the worst moments, still end
with exactly one Databricks run per logical attempt.

Each test drives one DAG run of ``tests/e2e/dags/e2e_databricks.py`` against the emulator process,
opens the window it is about (a held or delayed response at the emulator, or a test-only pause in
the task), strikes, and then checks the same invariants from the outside: the task's final state and
try, every run its DAG run created and how each ended (read from the emulator, which also counts
what it created), that no run is left active with nobody watching it, and that the XCom ``run_id``
names the run that finished.

Runs last 600 s unless a test ends them (``finish_run``) once its fault is over, and a run only ends
after the task was seen deferred and its trigger polling: Airflow 3.3 can fail a task whose trigger
fires within a second or so of deferring, which is Airflow's race, not ours.
"""

from __future__ import annotations

import signal
import time

import psutil
import pytest
from e2e_testkit import DatabricksE2E, signal_pid

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

DEFERRED = "e2e_dbx_deferred"
IN_WORKER = "e2e_dbx_in_worker"


def test_worker_sigkilled_before_submit_submits_once_on_retry(dbx: DatabricksE2E) -> None:
    """SIGKILL of the task process after it stored its idempotency token but before it submitted:
    the retry submits with the stored token, and exactly one run ever exists."""
    dag_run = dbx.start(DEFERRED, pause={"before_submit": [1]})
    pid = dag_run.wait_for_gate("before_submit")
    record = dag_run.record()
    assert (True, None) == (bool(record and record["token"]), record and record["external_id"])

    signal_pid(pid, signal.SIGKILL)
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], 1) == (outcome.xcom_run_id, outcome.requests["runs/submit"])


def test_worker_sigkilled_after_submit_before_run_id_persisted_gets_the_same_run_back(
    dbx: DatabricksE2E,
) -> None:
    """SIGKILL of the task process while Databricks has created the run but its response (the run
    id) has not reached the task: the retry submits again with the same token and gets the same run."""
    dbx.control.inject_fault(endpoint="runs/submit", kind="hold", count=1)
    dag_run = dbx.start(DEFERRED)
    [run] = dag_run.wait_for_runs(1)
    assert None is (dag_run.record() or {"external_id": "no record"})["external_id"]

    dag_run.signal_task_process(signal.SIGKILL)
    dbx.control.release_held()
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], 2) == (outcome.xcom_run_id, outcome.requests["runs/submit"])


def test_worker_sigkilled_after_run_id_persisted_before_defer_reconnects(dbx: DatabricksE2E) -> None:
    """SIGKILL of the task process after it persisted the run id, during its one status read before
    deferring (delayed at the emulator): the retry reconnects to the run without submitting."""
    dbx.control.inject_fault(endpoint="runs/get", kind="latency", delay_seconds=60, count=1)
    dag_run = dbx.start(DEFERRED)
    dbx.wait_for_requests(more_than=0, endpoint="runs/get")
    [run] = dag_run.runs()
    assert run["run_id"] == (dag_run.record() or {}).get("external_id")

    dag_run.signal_task_process(signal.SIGKILL)
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], 1) == (outcome.xcom_run_id, outcome.requests["runs/submit"])


def test_worker_sigkilled_in_completion_method_finishes_on_retry_without_submitting(
    dbx: DatabricksE2E,
) -> None:
    """SIGKILL of the task process inside ``execute_complete`` (the run succeeded, the task had not
    returned): the retry finds the run succeeded, submits nothing and still pushes its run id."""
    dag_run = dbx.start(DEFERRED, pause={"in_completion": [1]})
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()
    dag_run.finish_run(run["run_id"])
    pid = dag_run.wait_for_gate("in_completion")

    signal_pid(pid, signal.SIGKILL)
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], 1) == (outcome.xcom_run_id, outcome.requests["runs/submit"])


@pytest.mark.parametrize(
    ("dag_id", "window"),
    [(IN_WORKER, "polling in the worker"), (DEFERRED, "status read before deferring")],
    ids=["deferrable_false_polling", "window_before_defer"],
)
def test_worker_sigterm_while_holding_the_run_checkpoints_to_the_triggerer(
    dbx: DatabricksE2E, dag_id: str, window: str
) -> None:
    """SIGTERM to the worker (its supervisor forwards it, as on a pod shutdown) while the task holds
    the run, polling with deferrable=False or in its status read before deferring (delayed at the
    emulator): the same try defers instead, the run is not cancelled, and the triggerer finishes it."""
    if dag_id == DEFERRED:
        dbx.control.inject_fault(endpoint="runs/get", kind="latency", delay_seconds=60, count=1)
    dag_run = dbx.start(dag_id)
    [run] = dag_run.wait_for_runs(1)
    # The first runs/get is the status read after persisting the id; with deferrable=False the
    # second one is the worker's first poll.
    dbx.wait_for_requests(more_than=0 if dag_id == DEFERRED else 1, endpoint="runs/get")

    dag_run.signal_supervisor(signal.SIGTERM)
    checkpointed = dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 1, ["SUCCESS"], 1, []) == outcome.summary()
    assert (1, run["run_id"], 0) == (
        checkpointed["try_number"],
        outcome.xcom_run_id,
        outcome.requests.get("runs/cancel", 0),
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_triggerer_killed_mid_poll_resumes_watching_the_same_run(
    dbx: DatabricksE2E, sig: signal.Signals
) -> None:
    """The triggerer is stopped (SIGTERM) or crashes (SIGKILL) while a poll of the run is in flight
    (delayed at the emulator): a new triggerer rebuilds the trigger and watches the same run; nothing
    is cancelled or submitted again, and the task succeeds in its first try."""
    dag_run = dbx.start(DEFERRED)
    watched = dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()
    dbx.control.inject_fault(endpoint=None, kind="latency", delay_seconds=60, count=1)
    dbx.wait_for_requests(more_than=dbx.requests())

    dbx.airflow.faults.kill("triggerer", sig)
    dbx.airflow.restart("triggerer")
    old_job = watched["triggerer_job_id"]
    new_job = dbx.airflow.wait_for(
        "a new triggerer to take the trigger over",
        lambda: job if (job := dag_run.triggerer_job_id()) not in (None, old_job) else None,
    )
    dbx.wait_for_requests(more_than=dbx.requests())
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    dag_run.assert_succeeded_on_one_run(run["run_id"])
    assert new_job != old_job


def test_user_marks_deferred_task_failed_cancels_the_run(dbx: DatabricksE2E) -> None:
    """A user marks the deferred task failed: the trigger's on_kill cancels the run, and the task
    stays failed without a retry."""
    dag_run = dbx.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()

    dbx.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
    dag_run.wait_for_run_terminal(run["run_id"])

    outcome = dag_run.outcome()
    assert ("failed", 1, ["CANCELED"], 1, []) == outcome.summary()
    assert run["run_id"] == outcome.xcom_run_id


def test_user_marks_running_task_failed_cancels_the_run(dbx: DatabricksE2E) -> None:
    """A user marks failed a task that polls its run in the worker (deferrable=False): the SIGTERM
    that follows is recognised as a user's kill, not a shutdown, and the run is cancelled."""
    dag_run = dbx.start(IN_WORKER)
    [run] = dag_run.wait_for_runs(1)
    dbx.wait_for_requests(more_than=1, endpoint="runs/get")
    dag_run.wait_for_state("running")

    dbx.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
    dag_run.wait_for_run_terminal(run["run_id"])

    outcome = dag_run.outcome()
    assert ("failed", 1, ["CANCELED"], 1, []) == outcome.summary()
    assert run["run_id"] == outcome.xcom_run_id


def test_user_marks_running_task_failed_during_a_429_storm_on_cancel_still_cancels_before_the_sigkill(
    dbx: DatabricksE2E,
) -> None:
    """A user marks failed a task that polls in the worker while the workspace rate-limits
    ``runs/cancel`` (429, Retry-After: 30). Honouring the header would outlast the supervisor's SIGKILL,
    due 5 s after its SIGTERM, and leave the run going: the cancel of a user's kill is hurried, and
    comes back every 0.25 s until the workspace takes it."""
    dag_run = dbx.start(IN_WORKER)
    [run] = dag_run.wait_for_runs(1)
    dbx.wait_for_requests(more_than=1, endpoint="runs/get")
    dag_run.wait_for_state("running")
    dbx.control.inject_fault(
        endpoint="runs/cancel", kind="http_error", status=429, retry_after_seconds=30, count=3
    )

    dbx.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
    dag_run.wait_for_run_terminal(run["run_id"])

    outcome = dag_run.outcome()
    assert ("failed", 1, ["CANCELED"], 1, []) == outcome.summary()
    assert 4 == outcome.requests.get("runs/cancel")


def test_user_marks_task_failed_while_its_submit_is_in_flight_cancels_the_run_it_created(
    dbx: DatabricksE2E,
) -> None:
    """Found by the chaos campaign (seed 14): a user marks the task failed while Databricks holds the
    answer to its submit. The SIGTERM that follows waits for that answer, is judged a user's kill with
    the new run in hand, and cancels it. It used to cut the submit short and leave the run it had
    created running, with no task and no trigger to stop it."""
    dbx.control.inject_fault(endpoint="runs/submit", kind="hold", count=1)
    dag_run = dbx.start(DEFERRED)
    [run] = dag_run.wait_for_runs(1)
    dbx.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
    dbx.airflow.wait_for(
        "the supervisor to SIGTERM the task",
        lambda: "shouldn't be running anymore" in dag_run.logs(1) or None,
        timeout_seconds=30,
    )
    dbx.control.release_held()  # within the 5 s before the supervisor escalates to SIGKILL
    dag_run.wait_for_run_terminal(run["run_id"])

    outcome = dag_run.outcome()
    assert ("failed", 1, ["CANCELED"], 1, []) == outcome.summary()
    assert 1 == outcome.requests.get("runs/cancel", 0)


def test_user_marks_task_success_while_its_submit_answers_are_lost_still_cancels_the_run_in_time(
    dbx: DatabricksE2E,
) -> None:
    """Found by the HA chaos campaign (seed 60, replayed): Databricks applies the submit but its first
    four answers are lost, and a user marks the task success meanwhile. The supervisor's SIGTERM waits
    for the submit's answer and hurries it: the client resends at once (the idempotency token hands
    back the same run), learns the run, and cancels it before the SIGKILL that follows 5 s later.
    It used to sit out its backoff (1 + 2 + 4 + 8 s) and be killed first, the run going on alone."""
    dbx.control.inject_fault(endpoint="runs/submit", kind="lose_response", count=4)
    dag_run = dbx.start(DEFERRED)
    [run] = dag_run.wait_for_runs(1)
    dbx.airflow.rest.mark_task_success(dag_run.dag_id, dag_run.run_id, "etl")
    dag_run.wait_for_run_terminal(run["run_id"])

    outcome = dag_run.outcome()
    assert ("success", 1, ["CANCELED"], 1, []) == outcome.summary()
    assert (5, 1) == (outcome.requests.get("runs/submit"), outcome.requests.get("runs/cancel"))
    assert "SIGTERM during the submit: hurried it" in dag_run.logs(1)


def test_user_marks_task_success_before_it_decided_submits_nothing(dbx: DatabricksE2E) -> None:
    """Found by the single-node chaos campaign (seed 61): a user marks the task success while it is
    still starting (there, a 10 s parse of its DAG file). Airflow's own SIGTERM handler only calls
    ``on_kill`` and lets the task go on; the operator notes the signal there and, once its window
    opens, asks the API server first: a user's kill submits nothing. It used to be forgotten: the task
    submitted a run, its deferral was refused, and the run went on with nobody to stop it."""
    dag_run = dbx.start(DEFERRED, pause={"before_decide": [1]})
    dag_run.wait_for_gate("before_decide")
    dbx.airflow.rest.mark_task_success(dag_run.dag_id, dag_run.run_id, "etl")
    dbx.airflow.wait_for(
        "the supervisor to SIGTERM the task",
        lambda: "shouldn't be running anymore" in dag_run.logs(1) or None,
        timeout_seconds=30,
    )
    dag_run.release_gate("before_decide")  # within the 5 s before the supervisor escalates to SIGKILL
    dbx.airflow.wait_for(
        "the task to decide on the SIGTERM",
        lambda: "before its job was submitted" in dag_run.logs(1) or None,
        timeout_seconds=30,
    )

    outcome = dag_run.outcome()
    assert ("success", 1, [], 0, []) == outcome.summary()
    assert 0 == outcome.requests.get("runs/submit", 0)


def test_user_clears_deferred_task_cancels_old_run_and_submits_exactly_one_new_run(
    dbx: DatabricksE2E,
) -> None:
    """A user clears the deferred task: the old trigger's on_kill cancels the old run, the new try
    submits exactly one fresh run rather than adopting the old one (which that late on_kill would
    cancel), and finishes with it."""
    dag_run = dbx.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    [old] = dag_run.runs()

    dbx.airflow.rest.clear_task(dag_run.dag_id, dag_run.run_id, "etl")
    dag_run.wait_for_run_terminal(old["run_id"])
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    [_, new] = dag_run.runs()
    dag_run.finish_run(new["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["CANCELED", "SUCCESS"], 2, []) == outcome.summary()
    assert new["run_id"] == outcome.xcom_run_id


def test_run_failed_on_databricks_is_retried_with_exactly_one_fresh_run(dbx: DatabricksE2E) -> None:
    """The run fails on Databricks: the try fails, and the retry submits exactly one fresh run (a new
    token, never the failed run back) and succeeds with it."""
    dag_run = dbx.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    [first] = dag_run.runs()

    dag_run.finish_run(first["run_id"], result_state="FAILED")
    dag_run.wait_for_try(2, "deferred")
    dag_run.wait_for_deferred_and_watched()
    [_, second] = dag_run.runs()
    dag_run.finish_run(second["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["FAILED", "SUCCESS"], 2, []) == outcome.summary()
    assert second["run_id"] == outcome.xcom_run_id


def test_throttling_and_server_error_storm_while_deferred_is_absorbed(dbx: DatabricksE2E) -> None:
    """A storm of 429s (with Retry-After) and 5xx answers hits every poll while the task is deferred:
    the trigger waits it out, the task succeeds in its first try, and nothing is submitted again."""
    dag_run = dbx.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()
    # In this order, as one poll meets them: backoff statuses first (their waits grow with each
    # attempt), then answers that say how long to wait (Retry-After), which the client honours.
    storm = {500: 1, 502: 1, 503: 3, 429: 4}
    for status, count in storm.items():
        retry_after = 1 if status in (503, 429) else None
        dbx.control.inject_fault(
            endpoint=None, kind="http_error", status=status, count=count, retry_after_seconds=retry_after
        )

    def storm_over() -> bool | None:
        answered = dbx.control.counters().responses_by_status
        return all(answered.get(status, 0) >= count for status, count in storm.items()) or None

    dbx.airflow.wait_for("the storm to hit every injected fault", storm_over, timeout_seconds=90)
    dbx.wait_for_requests(more_than=dbx.requests())
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 1, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], 1) == (outcome.xcom_run_id, outcome.requests["runs/submit"])


@pytest.mark.timeout(300)
def test_supervisor_sigkilled_alone_orphan_and_next_try_converge_on_one_run(dbx: DatabricksE2E) -> None:
    """SIGKILL of the supervisor alone while its task process is about to submit: the orphaned task
    process keeps running, Airflow starts the next try (lost heartbeat) while it still does, and
    both submit with the same token: two submissions, one run."""
    dag_run = dbx.start(DEFERRED, pause={"before_submit": [1]})
    orphan = dag_run.wait_for_gate("before_submit")
    processes = dag_run.processes()
    assert orphan == processes.task_pid

    signal_pid(processes.supervisor_pid, signal.SIGKILL)
    dag_run.wait_for_try(2, "deferred")
    [run] = dag_run.runs()
    orphan_process = psutil.Process(orphan)  # raises if it is gone: it must overlap try 2
    dag_run.release_gate("before_submit")
    dbx.wait_for_requests(more_than=1, endpoint="runs/submit")
    _, alive = psutil.wait_procs([orphan_process], timeout=30)
    dag_run.wait_for_deferred_and_watched()
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    assert ("success", 2, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], 2, []) == (outcome.xcom_run_id, outcome.requests["runs/submit"], alive)


def test_emulator_crash_and_restart_mid_run_is_survived(dbx: DatabricksE2E) -> None:
    """The Databricks API goes away mid-run (the emulator is SIGKILLed) and comes back with its
    state file: the trigger rides out the outage, finds the same run, and the task succeeds in its
    first try without submitting again."""
    dag_run = dbx.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    [run] = dag_run.runs()

    dbx.emulator.kill()
    time.sleep(3)  # the outage: three poll intervals in which every request is refused
    dbx.emulator.start()
    dbx.wait_for_requests(more_than=0)  # the trigger polls again (the emulator's counters restarted)
    dag_run.finish_run(run["run_id"])
    dag_run.wait_for_state("success")

    outcome = dag_run.outcome()
    # Counters restarted with the emulator: 0 runs created since, so nothing was submitted again.
    assert ("success", 1, ["SUCCESS"], 0, []) == outcome.summary()
    assert (run["run_id"], 0) == (outcome.xcom_run_id, outcome.requests.get("runs/submit", 0))


@pytest.mark.timeout(300)
def test_triggerer_without_greenback_portal_runs_the_trigger(dbx: DatabricksE2E) -> None:
    """A triggerer started with ``AIRFLOW_DISABLE_GREENBACK_PORTAL=true`` (it saves ~7 KiB per trigger,
    see docs/performance.md) runs our trigger: it reads its connection and polls through async APIs
    only, so the task defers and succeeds on its one run, where a sync SDK call would have failed it."""
    dbx.airflow.restart("triggerer", env={"AIRFLOW_DISABLE_GREENBACK_PORTAL": "true"})
    try:
        triggerer = psutil.Process(dbx.airflow.pids()["triggerer"])
        assert "true" == triggerer.environ().get("AIRFLOW_DISABLE_GREENBACK_PORTAL")
        dag_run = dbx.start(DEFERRED)
        dag_run.wait_for_deferred_and_watched()
        [run] = dag_run.runs()
        dag_run.finish_run(run["run_id"])
        dag_run.wait_for_state("success")

        outcome = dag_run.outcome()
        assert ("success", 1, ["SUCCESS"], 1, []) == outcome.summary()
        assert run["run_id"] == outcome.xcom_run_id
    finally:
        dbx.airflow.restart("triggerer")

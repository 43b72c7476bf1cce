"""Two triggerers, one workspace: what the workspace sees, and what two watchers of one run deliver.

``[resumable_triggers] workspace_share`` is 0.5 on this deployment (``conftest.HA_ENV``): each of the two
triggerers paces itself at half of a trigger's ``requests_per_second``, with half the burst, so the
workspace never sees more than the whole allowance however the triggers are spread. And when a stalled
triggerer's runner keeps polling a run that the other triggerer took over, both fire an event for it:
the second must not harm the task.
"""

from __future__ import annotations

import math
import time

import pytest
from e2e_testkit import DagRun, DatabricksE2E

from ._kit import BUDGET, DEFERRED, TRIGGERERS, heartbeat_after, holder_of, taken_over, trigger_logs
from .conftest import WORKSPACE_SHARE

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ALLOWANCE = 1.0  # requests a second for the whole workspace: the BUDGET DAG's requests_per_second
DEFAULT_BURST = 20  # ClientSettings().burst
OBSERVED_SECONDS = 30.0


def busiest(times: list[float], window: float) -> int:
    """The most requests in any ``window`` seconds (a window starting at each request)."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] < t - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def watch_on_the_other_triggerer(ha: DatabricksE2E, holder: str) -> DagRun:
    """Start a BUDGET DAG run whose trigger lands on the triggerer that is not ``holder``: ``holder`` is
    frozen while the task defers, for less than the health threshold, so it keeps its own triggers."""
    dag_run = ha.start(BUDGET, pause={"before_defer": [1]})
    dag_run.wait_for_gate("before_defer")
    ha.airflow.faults.pause(holder)
    try:
        dag_run.release_gate("before_defer")
        job = ha.airflow.wait_for(
            "a triggerer to take the trigger", dag_run.triggerer_job_id, timeout_seconds=9
        )
    finally:
        ha.airflow.faults.resume(holder)
    assert ha.airflow.faults.component_of_job(job) != holder
    return dag_run


def test_two_triggerers_never_send_a_workspace_more_than_its_allowance(ha: DatabricksE2E) -> None:
    """Two tasks, one on each triggerer, each polling every 0.25 s on an allowance of one request a
    second (they want ~8 a second between them). Over 30 s the workspace sees, in every window of w
    seconds, at most ``2 * ceil(20 * share) + w * allowance`` polls: the share keeps the sum of the two
    triggerers' budgets at one allowance."""
    for triggerer in TRIGGERERS:  # a triggerer's client keeps the settings of its first trigger
        ha.airflow.restart(triggerer)
    first = ha.start(BUDGET)
    first.wait_for_deferred_and_watched()
    _, holder = holder_of(first)
    second = watch_on_the_other_triggerer(ha, holder)
    second.wait_for_deferred_and_watched()

    started = time.time()
    time.sleep(OBSERVED_SECONDS)  # the observation period itself, not a wait for an event
    polls = [
        record.time
        for record in ha.control.request_log
        if record.endpoint in ("runs/list", "runs/get") and record.time >= started
    ]
    for dag_run in (first, second):
        dag_run.finish_run(dag_run.runs()[0]["run_id"])
    for dag_run in (first, second):
        dag_run.wait_for_state("success")

    bursts = 2 * math.ceil(DEFAULT_BURST * WORKSPACE_SHARE)
    windows = (1.0, 5.0, 10.0, OBSERVED_SECONDS)
    seen = {w: busiest(polls, w) for w in windows}
    print(f"polls in {OBSERVED_SECONDS:.0f} s: {len(polls)}; busiest windows: {seen}")
    assert all(seen[w] <= bursts + w * ALLOWANCE + 1 for w in windows), seen
    assert [("success", 1, ["SUCCESS"])] * 2 == [d.outcome().summary()[:3] for d in (first, second)]


def test_stalled_triggerers_runner_fires_a_second_event_that_does_no_harm(ha: DatabricksE2E) -> None:
    """Only the main process of the triggerer holding the trigger freezes: its trigger runner keeps
    polling the run after the other triggerer took the trigger over, so two triggers watch one run.
    The run ends, both fire; the first event resumes the task, which succeeds once in its first try;
    the stalled triggerer's event, delivered when it wakes, changes nothing."""
    dag_run = ha.start(DEFERRED)
    dag_run.wait_for_deferred_and_watched()
    old_job, holder = holder_of(dag_run)
    [run] = dag_run.runs()

    ha.airflow.faults.pause(holder, role="main")
    try:
        taken_over(dag_run, old_job)
        ha.wait_for_requests(more_than=ha.requests())
        dag_run.finish_run(run["run_id"])
        dag_run.wait_for_state("success")
    finally:
        woke_at = time.time()
        ha.airflow.faults.resume(holder)
    heartbeat_after(ha.airflow, holder, woke_at)
    ha.wait_until_quiet(seconds=3.0, timeout_seconds=30)

    dag_run.assert_succeeded_on_one_run(run["run_id"])
    assert 1 == dag_run.logs(1).count(f"job {run['run_id']} succeeded")
    stalled = trigger_logs(dag_run, old_job)
    print(f"the stalled triggerer's trigger log:\n{stalled[-3000:]}")
    assert "Trigger fired event" in stalled  # its runner really watched the run to the end

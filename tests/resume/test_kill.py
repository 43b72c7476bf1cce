"""The on_kill decision: every state Airflow can show a killed trigger, and the worker's SIGTERM rule."""

from __future__ import annotations

import pytest

from resumable_triggers.resume._kill import (
    KillVerdict,
    SigtermVerdict,
    TaskView,
    WatchMarker,
    after_sigterm,
    kill_verdict,
    task_state_key,
)

MINE = 42
OTHER = 43


def verdict(
    state: str | None,
    marker: WatchMarker | None = None,
    *,
    job_active: bool | None = True,
    watching_try: int | None = None,
) -> KillVerdict:
    view = TaskView(state=state, marker=marker)
    return kill_verdict(external_id=MINE, job_active=job_active, view=view, watching_try=watching_try).kind


def on(external_id: int, try_number: int = 1) -> WatchMarker:
    return WatchMarker(try_number=try_number, external_id=external_id)


def test_reassigned_trigger_of_a_task_still_deferred_on_its_job_keeps_the_job() -> None:
    """A triggerer that lost its triggers to another one finds the task deferred on the same job:
    the trigger was reassigned, and the job keeps running."""
    assert KillVerdict.KEEP == verdict("deferred", on(MINE))


def test_task_deferred_again_by_a_later_try_on_the_same_job_keeps_it() -> None:
    """A retry reconnected to the job and deferred on it: the old trigger's kill leaves it alone."""
    assert KillVerdict.KEEP == verdict("deferred", on(MINE, try_number=2))


def test_task_up_for_retry_on_the_same_job_keeps_it_for_the_retry() -> None:
    """The try failed without a user (e.g. a lost watch): the retry reconnects, so nothing cancels."""
    assert KillVerdict.KEEP == verdict("up_for_retry", on(MINE))


@pytest.mark.parametrize("state", ["failed", "success", "skipped", "upstream_failed", "removed"])
def test_task_that_is_over_cancels_its_still_running_job(state: str) -> None:
    """Marked failed or success by a user (or ended while the job ran): a live job is cancelled."""
    assert KillVerdict.CANCEL == verdict(state, on(MINE))


def test_running_task_cleared_by_a_user_cancels() -> None:
    """``restarting`` is a user's clear of a running try."""
    assert KillVerdict.CANCEL == verdict("restarting", on(MINE))


def test_deferred_task_cleared_by_a_user_cancels_before_the_next_try_starts() -> None:
    """A clear leaves the task without a state; the next try starts a new cycle and never adopts the
    old job, so the old one is cancelled."""
    assert KillVerdict.CANCEL == verdict(None, on(MINE))


def test_task_deferred_on_another_job_cancels_the_one_left_behind() -> None:
    """After a clear, the new try submitted another job and deferred on it: ours is abandoned."""
    assert KillVerdict.CANCEL == verdict("deferred", on(OTHER, try_number=2))


def test_marker_of_a_zombie_try_older_than_the_trigger_does_not_cancel_its_job() -> None:
    """Try 2 deferred on our job; then a zombie try 1 woke and pushed its own marker, naming the job it
    held before: older than the trigger's try, it speaks for nobody, and our job keeps running."""
    assert KillVerdict.KEEP == verdict("deferred", on(OTHER, try_number=1), watching_try=2)


def test_marker_of_a_later_try_on_another_job_still_cancels_ours() -> None:
    """The trigger's try is known, and a later try deferred on another job: ours was left behind."""
    assert KillVerdict.CANCEL == verdict("deferred", on(OTHER, try_number=3), watching_try=2)


def test_deferred_task_without_a_marker_keeps_the_job() -> None:
    """Nothing proves the job abandoned (an operator that writes no marker): keep it."""
    assert KillVerdict.KEEP == verdict("deferred", None)


@pytest.mark.parametrize("state", ["scheduled", "queued", "running", "some_state_from_airflow_4"])
def test_task_between_steps_is_looked_at_again(state: str) -> None:
    """Resuming in the same try, or a new try starting (its XComs not yet cleared): undecided."""
    assert KillVerdict.LOOK_AGAIN == verdict(state, on(MINE))


def test_unreadable_task_is_looked_at_again() -> None:
    """No answer from Airflow decides nothing."""
    assert KillVerdict.LOOK_AGAIN == kill_verdict(external_id=MINE, job_active=True, view=None).kind


@pytest.mark.parametrize("state", ["failed", None, "deferred"])
def test_finished_job_is_never_cancelled(state: str | None) -> None:
    """A job that already ended needs no cancel, whatever the task's state."""
    assert KillVerdict.KEEP == verdict(state, on(OTHER), job_active=False)


def test_unknown_job_status_still_decides_from_the_task() -> None:
    """The job's status could not be read: the task's state alone decides."""
    assert (KillVerdict.CANCEL, KillVerdict.KEEP) == (
        verdict("failed", on(MINE), job_active=None),
        verdict("deferred", on(MINE), job_active=None),
    )


@pytest.mark.parametrize(
    "value",
    [None, "42", [1, 42], {"try_number": "1", "external_id": 42}, {"try_number": 1}, {"external_id": 4.2}],
)
def test_foreign_or_corrupt_marker_reads_as_none(value: object) -> None:
    """An XCom under the marker key that is no marker is ignored, never a crash."""
    assert None is WatchMarker.from_xcom(value)


def test_marker_round_trips_through_its_xcom_value() -> None:
    assert on(MINE, try_number=3) == WatchMarker.from_xcom(on(MINE, try_number=3).to_xcom())


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        ("running", SigtermVerdict.CHECKPOINT),  # the worker is shutting down
        (None, SigtermVerdict.CHECKPOINT),
        ("up_for_retry", SigtermVerdict.SUPERSEDED),  # the scheduler gave a frozen try up: no user spoke
        ("deferred", SigtermVerdict.SUPERSEDED),  # the next try already defers on the job
        ("queued", SigtermVerdict.SUPERSEDED),
        ("failed", SigtermVerdict.USER_KILL),
        ("success", SigtermVerdict.USER_KILL),
        ("restarting", SigtermVerdict.USER_KILL),
    ],
)
def test_worker_sigterm_counts_as_a_users_kill_only_for_a_users_states(
    state: str | None, verdict: SigtermVerdict
) -> None:
    """The worker side cancels after a SIGTERM only when the API server shows a user's act; it
    checkpoints on a shutdown, and leaves a try the scheduler moved on from without touching the job."""
    assert verdict == after_sigterm(state)


@pytest.mark.parametrize(("map_index", "key"), [(None, "etl"), (-1, "etl"), (0, "etl_0"), (12, "etl_12")])
def test_task_state_key_matches_airflows_answer_for_mapped_and_plain_tasks(
    map_index: int | None, key: str
) -> None:
    """Airflow's ``get_task_states`` names a mapped task instance ``<task>_<index>``."""
    assert key == task_state_key("etl", map_index)

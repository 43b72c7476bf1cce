"""The history checker on synthetic histories: each invariant passes a clean history and catches a
violating one (so the campaign's "zero violations" means something)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from resumable_triggers.testing.chaos import (
    ActionEvent,
    History,
    RequestEvent,
    RunRecord,
    TiSample,
    TryRecord,
    Violation,
    check,
    describe,
)

TI = "dag|run-1|etl|-1"
T0 = 1_000.0


def _history(**fields: object) -> History:
    base = History(
        seed=42,
        started=T0,
        ended=T0 + 300,
        runs=(RunRecord(1, TI, T0 + 5, T0 + 35, "TERMINATED", "SUCCESS"),),
        samples=(
            TiSample(T0 + 3, TI, "running", 1),
            TiSample(T0 + 6, TI, "deferred", 1),
            TiSample(T0 + 37, TI, "success", 1, end_date=T0 + 36.5),
        ),
        tries=(TryRecord(TI, 1, "success", T0 + 3, T0 + 36.5),),
        requests=(
            RequestEvent(T0 + 5, "POST", "runs/submit", 200, 1),
            RequestEvent(T0 + 10, "GET", "runs/get", 200, 1),
        ),
        xcom_run_ids={TI: 1},
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def invariants(history: History) -> list[str]:
    return [v.invariant for v in check(history)]


def test_a_clean_history_passes_every_invariant() -> None:
    """One try, one run that succeeded, the XCom names it: nothing to report."""
    assert [] == check(_history())


def test_a_retry_after_a_failed_run_is_a_new_generation_not_a_second_run() -> None:
    """Run 1 failed and ended; the retry's run 2 started after that: a justified new generation."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 20, "TERMINATED", "FAILED"),
            RunRecord(2, TI, T0 + 25, T0 + 35, "TERMINATED", "SUCCESS"),
        ),
        xcom_run_ids={TI: 2},
    )
    assert [] == check(history)


def test_two_runs_active_at_once_in_one_attempt_are_caught() -> None:
    """A crash after submit must reconnect, not submit again: run 2 while run 1 runs is a duplicate."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 35, "TERMINATED", "SUCCESS"),
            RunRecord(2, TI, T0 + 12, T0 + 36, "TERMINATED", "SUCCESS"),
        )
    )
    assert ["one-run-per-attempt"] == invariants(history)


def test_a_run_after_a_succeeded_run_of_the_same_attempt_is_caught() -> None:
    """A retry that finds its run succeeded must finish, not resubmit."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 20, "TERMINATED", "SUCCESS"),
            RunRecord(2, TI, T0 + 25, T0 + 35, "TERMINATED", "SUCCESS"),
        ),
        xcom_run_ids={TI: 2},
    )
    assert ["one-run-per-attempt"] == invariants(history)


def test_a_clear_opens_a_new_attempt_whose_run_may_overlap_the_old_one() -> None:
    """After a user's clear the new cycle gets a run of its own while the old one is being cancelled."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 22, "TERMINATED", "CANCELED"),
            RunRecord(2, TI, T0 + 24, T0 + 40, "TERMINATED", "SUCCESS"),
        ),
        actions=(ActionEvent(T0 + 20, T0 + 20.2, "clear", TI),),
        requests=(RequestEvent(T0 + 21, "POST", "runs/cancel", 200, 1),),
        samples=(
            TiSample(T0 + 3, TI, "deferred", 1),
            TiSample(T0 + 21, TI, "scheduled", 2),
            TiSample(T0 + 42, TI, "success", 2, end_date=T0 + 41),
        ),
        xcom_run_ids={TI: 2},
    )
    assert [] == check(history)


def test_a_failed_clear_does_not_open_a_new_attempt() -> None:
    """Only a clear that Airflow accepted opens a cycle: two runs at once stay one attempt's."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 35, "TERMINATED", "SUCCESS"),
            RunRecord(2, TI, T0 + 24, T0 + 36, "TERMINATED", "SUCCESS"),
        ),
        actions=(ActionEvent(T0 + 20, T0 + 20.2, "clear", TI, ok=False, detail="HTTP 409"),),
    )
    assert "one-run-per-attempt" in invariants(history)


def test_a_cancel_with_no_user_action_and_no_timeout_is_caught() -> None:
    """A triggerer restart or a reassigned trigger must never cancel the run."""
    history = _history(
        requests=(
            RequestEvent(T0 + 5, "POST", "runs/submit", 200, 1),
            RequestEvent(T0 + 30, "POST", "runs/cancel", 200, 1),
        )
    )
    assert ["cancel-needs-a-reason"] == invariants(history)


@pytest.mark.parametrize("action", ["mark_failed", "mark_success", "clear"])
def test_a_cancel_after_a_user_action_on_the_task_is_allowed(action: str) -> None:
    """A user's kill may cancel (``cancel_on_kill``); so may the old run of a cleared task."""
    history = _history(
        runs=(RunRecord(1, TI, T0 + 5, T0 + 31, "TERMINATED", "CANCELED"),),
        actions=(ActionEvent(T0 + 28, T0 + 28.1, action, TI),),
        requests=(RequestEvent(T0 + 30, "POST", "runs/cancel", 200, 1),),
        samples=(TiSample(T0 + 3, TI, "deferred", 1), TiSample(T0 + 29, TI, "failed", 1, end_date=T0 + 28.5)),
        xcom_run_ids={},
    )
    assert "cancel-needs-a-reason" not in invariants(history)


def test_a_cancel_before_the_user_action_is_caught() -> None:
    """The action must come first: a cancel that precedes it had some other cause."""
    history = _history(
        runs=(RunRecord(1, TI, T0 + 5, T0 + 26, "TERMINATED", "CANCELED"),),
        actions=(ActionEvent(T0 + 28, T0 + 28.1, "mark_failed", TI),),
        requests=(RequestEvent(T0 + 25, "POST", "runs/cancel", 200, 1),),
        samples=(TiSample(T0 + 3, TI, "deferred", 1), TiSample(T0 + 29, TI, "failed", 1, end_date=T0 + 28.5)),
        xcom_run_ids={},
    )
    assert ["cancel-needs-a-reason"] == invariants(history)


def test_a_cancel_on_another_tasks_user_action_is_caught() -> None:
    """A user action on one task gives no reason to cancel another task's run."""
    other = "dag|run-1|other|-1"
    history = _history(
        actions=(ActionEvent(T0 + 20, T0 + 20.1, "mark_failed", other),),
        requests=(RequestEvent(T0 + 30, "POST", "runs/cancel", 200, 1),),
    )
    assert ["cancel-needs-a-reason"] == invariants(history)


def test_a_cancel_after_the_execution_timeout_is_allowed_and_one_before_it_is_not() -> None:
    """``execution_timeout`` cancels the run (in the worker): after timeout seconds of a try, not sooner."""
    ended = RunRecord(1, TI, T0 + 5, T0 + 16, "TERMINATED", "CANCELED")
    samples = (TiSample(T0 + 3, TI, "running", 1), TiSample(T0 + 17, TI, "failed", 1, end_date=T0 + 16))
    after = _history(
        runs=(ended,),
        samples=samples,
        timeouts={"dag|etl": 12.0},
        requests=(RequestEvent(T0 + 15.2, "POST", "runs/cancel", 200, 1),),
        xcom_run_ids={},
    )
    assert [] == check(after)
    before = replace(after, requests=(RequestEvent(T0 + 8, "POST", "runs/cancel", 200, 1),))
    assert ["cancel-needs-a-reason"] == invariants(before)


def test_a_cancel_the_emulator_did_not_apply_is_not_judged() -> None:
    """A cancel answered 503 by a fault (no run id logged) changed nothing."""
    history = _history(requests=(RequestEvent(T0 + 30, "POST", "runs/cancel", 503, None, "http_error"),))
    assert [] == check(history)


def test_a_run_still_active_after_its_task_finished_is_caught() -> None:
    """A task marked failed whose run keeps running 60 s later: an orphan nobody watches."""
    history = _history(
        runs=(RunRecord(1, TI, T0 + 5, T0 + 90, "TERMINATED", "SUCCESS"),),
        actions=(ActionEvent(T0 + 20, T0 + 20.1, "mark_failed", TI),),
        samples=(TiSample(T0 + 3, TI, "deferred", 1), TiSample(T0 + 21, TI, "failed", 1, end_date=T0 + 20.5)),
        xcom_run_ids={},
    )
    assert ["no-run-outlives-its-task"] == invariants(history)


def test_a_run_cancelled_within_the_grace_after_a_users_kill_is_fine() -> None:
    """The trigger's on_kill cancels a few seconds after the user acted."""
    history = _history(
        runs=(RunRecord(1, TI, T0 + 5, T0 + 26, "TERMINATED", "CANCELED"),),
        actions=(ActionEvent(T0 + 20, T0 + 20.1, "mark_failed", TI),),
        requests=(RequestEvent(T0 + 25, "POST", "runs/cancel", 200, 1),),
        samples=(TiSample(T0 + 3, TI, "deferred", 1), TiSample(T0 + 21, TI, "failed", 1, end_date=T0 + 20.5)),
        xcom_run_ids={},
    )
    assert [] == check(history)


def test_a_run_created_after_its_task_finished_is_caught() -> None:
    """A zombie try submitting after the task is done leaves a run nobody owns."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 35, "TERMINATED", "SUCCESS"),
            RunRecord(2, TI, T0 + 80, None, "RUNNING"),
        ),
    )
    assert "no-run-outlives-its-task" in invariants(history)


def test_a_task_that_succeeded_without_a_succeeded_run_is_caught() -> None:
    """Success of the task with its run FAILED: the task lied."""
    history = _history(runs=(RunRecord(1, TI, T0 + 5, T0 + 35, "TERMINATED", "FAILED"),))
    assert ["success-needs-a-succeeded-run"] == invariants(history)


def test_a_task_that_succeeded_before_its_run_did_is_caught() -> None:
    """The run ended SUCCESS, but 30 s after the task already reported success."""
    history = _history(runs=(RunRecord(1, TI, T0 + 5, T0 + 66, "TERMINATED", "SUCCESS"),))
    assert "success-needs-a-succeeded-run" in invariants(history)


def test_a_success_backed_only_by_the_previous_cycles_run_is_caught() -> None:
    """After a clear the old run must never be adopted: the new cycle needs its own success."""
    history = _history(
        runs=(RunRecord(1, TI, T0 + 5, T0 + 35, "TERMINATED", "SUCCESS"),),
        actions=(ActionEvent(T0 + 20, T0 + 20.2, "clear", TI),),
        samples=(
            TiSample(T0 + 3, TI, "deferred", 1),
            TiSample(T0 + 21, TI, "scheduled", 2),
            TiSample(T0 + 40, TI, "success", 2, end_date=T0 + 39),
        ),
    )
    assert ["success-needs-a-succeeded-run"] == invariants(history)


def test_a_task_marked_success_by_a_user_needs_no_run() -> None:
    """The user's word is the success: no run, no XCom required (its run is cancelled instead)."""
    history = _history(
        runs=(RunRecord(1, TI, T0 + 5, T0 + 22, "TERMINATED", "CANCELED"),),
        actions=(ActionEvent(T0 + 20, T0 + 20.1, "mark_success", TI),),
        requests=(RequestEvent(T0 + 21, "POST", "runs/cancel", 200, 1),),
        samples=(
            TiSample(T0 + 3, TI, "deferred", 1),
            TiSample(T0 + 20.5, TI, "success", 1, end_date=T0 + 20.1),
        ),
        xcom_run_ids={},
    )
    assert [] == check(history)


def test_an_xcom_naming_another_run_is_caught() -> None:
    """The run_id XCom must name the run that finished, not an earlier failed generation."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 20, "TERMINATED", "FAILED"),
            RunRecord(2, TI, T0 + 25, T0 + 35, "TERMINATED", "SUCCESS"),
        ),
        xcom_run_ids={TI: 1},
    )
    assert ["xcom-names-the-finished-run"] == invariants(history)


def test_a_missing_xcom_is_caught() -> None:
    history = _history(xcom_run_ids={})
    assert ["xcom-names-the-finished-run"] == invariants(history)


def test_a_violation_names_the_seed_the_invariant_and_the_timeline_around_it() -> None:
    """What a campaign prints: enough to replay it and to see what happened just before."""
    history = _history(
        requests=(
            RequestEvent(T0 + 5, "POST", "runs/submit", 200, 1),
            RequestEvent(T0 + 30, "POST", "runs/cancel", 200, 1),
        )
    )
    [violation] = check(history)
    text = describe(history, violation)
    head = "VIOLATION seed=42 invariant=cancel-needs-a-reason task=dag|run-1|etl|-1 at 30.0s"
    assert text.startswith(head)
    assert "POST runs/cancel run 1 -> 200   <== here" in text
    assert "run 1 created" in text


def test_a_history_survives_its_json_round_trip() -> None:
    """``--json`` then ``--check`` judges the same history."""
    history = _history(actions=(ActionEvent(T0 + 20, T0 + 20.1, "mark_failed", "dag|run-1|other|-1"),))
    assert history == History.from_json(history.to_json())
    assert all(isinstance(v, Violation) for v in check(History.from_json(history.to_json())))


def test_a_clear_that_got_no_answer_may_have_opened_a_new_attempt() -> None:
    """A frozen API server serves its backlog when it resumes: an unanswered clear may have been
    applied, so the run after it is not held against the library."""
    history = _history(
        runs=(
            RunRecord(1, TI, T0 + 5, T0 + 62, "TERMINATED", "CANCELED"),
            RunRecord(2, TI, T0 + 60, T0 + 80, "TERMINATED", "SUCCESS"),
        ),
        actions=(ActionEvent(T0 + 20, T0 + 50, "clear", TI, ok=False, detail="timed out", answered=False),),
        requests=(RequestEvent(T0 + 61, "POST", "runs/cancel", 200, 1),),
        samples=(
            TiSample(T0 + 3, TI, "deferred", 1),
            TiSample(T0 + 52, TI, "running", 2),
            TiSample(T0 + 82, TI, "success", 2, end_date=T0 + 81),
        ),
        xcom_run_ids={TI: 2},
    )
    assert [] == check(history)
    refused = replace(history, actions=(replace(history.actions[0], answered=True),))
    assert ["one-run-per-attempt"] == invariants(refused)

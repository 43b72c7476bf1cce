"""Every branch of the resume decision, as a pure function."""

from __future__ import annotations

import pytest

from resumable_triggers.resume import (
    Decision,
    JobPhase,
    JobStatus,
    ResumeRecord,
    first_try_of_cycle,
    plan_after_status,
    plan_start,
)


def mint(cycle: int, generation: int) -> ResumeRecord:
    return ResumeRecord(kind="k", token=f"tok-{cycle}-{generation}", cycle=cycle, generation=generation)


def test_first_attempt_submits_generation_zero() -> None:
    """With nothing stored, the task submits with the cycle's generation-0 token."""
    plan = plan_start(None, cycle=1, mint=mint)
    assert (Decision.FRESH_SUBMIT, mint(1, 0)) == (plan.decision, plan.record)


def test_worker_killed_after_persisting_token_resubmits_with_the_same_token() -> None:
    """A token without a run id (submit response lost, or crash before persisting) is reused as is."""
    stored = mint(1, 0)
    plan = plan_start(stored, cycle=1, mint=mint)
    assert (Decision.SUBMIT_WITH_STORED_TOKEN, stored) == (plan.decision, plan.record)


def test_stored_run_id_is_inspected_before_anything_else() -> None:
    """A record that names a job leads to one status read, not a submit."""
    stored = mint(1, 0).with_external_id(7)
    plan = plan_start(stored, cycle=1, mint=mint)
    assert plan.decision == Decision.INSPECT
    assert not plan.decision.submits


def test_user_clear_starts_a_new_cycle_and_never_adopts_the_old_run() -> None:
    """After a clear (a later cycle) the old run is left alone and a new generation-0 token is minted."""
    stored = mint(1, 3).with_external_id(7)
    plan = plan_start(stored, cycle=4, mint=mint)
    assert (Decision.NEW_CYCLE, mint(4, 0)) == (plan.decision, plan.record)


def test_try_from_an_older_cycle_than_the_record_is_superseded() -> None:
    """An orphaned try of an older cycle must not overwrite the newer cycle's record: it is told a
    newer try owns the job, and submits nothing."""
    stored = mint(4, 0)
    plan = plan_start(stored, cycle=1, mint=mint)
    assert (Decision.SUPERSEDED, stored, False) == (plan.decision, plan.record, plan.decision.submits)


@pytest.mark.parametrize(
    ("phase", "decision"),
    [(JobPhase.ACTIVE, Decision.RECONNECT), (JobPhase.SUCCEEDED, Decision.ALREADY_SUCCEEDED)],
)
def test_active_or_succeeded_run_is_kept(phase: JobPhase, decision: Decision) -> None:
    """An active run is reconnected to; a succeeded one is finished without resubmitting."""
    stored = mint(1, 0).with_external_id(7)
    plan = plan_after_status(stored, JobStatus(phase, "X"), mint=mint)
    assert (decision, stored) == (plan.decision, plan.record)


@pytest.mark.parametrize("phase", [JobPhase.FAILED, JobPhase.GONE])
def test_failed_or_vanished_run_moves_to_the_next_generation(phase: JobPhase) -> None:
    """A retry after a failed (or deleted) run submits with a new token, never getting the old run back."""
    stored = mint(2, 1).with_external_id(7)
    plan = plan_after_status(stored, JobStatus(phase, "TERMINATED"), mint=mint)
    assert (Decision.TERMINAL_RESUBMIT, mint(2, 2)) == (plan.decision, plan.record)
    assert plan.decision.submits


def test_only_a_resubmit_with_the_stored_token_may_get_an_earlier_tries_job_back() -> None:
    """``new_token`` (where side effects like cancelling a job's other runs may happen) holds for every
    submitting decision except the one that reuses a stored token, and for nothing that does not submit."""
    assert {Decision.FRESH_SUBMIT, Decision.NEW_CYCLE, Decision.TERMINAL_RESUBMIT} == {
        decision for decision in Decision if decision.new_token
    }


@pytest.mark.parametrize(
    ("max_tries", "retries", "first"),
    [(2, 2, 1), (5, 2, 4), (0, 0, 1), (7, 0, 8)],
)
def test_first_try_of_cycle_follows_airflows_clear_arithmetic(
    max_tries: int, retries: int, first: int
) -> None:
    """A clear at try N sets max_tries = N + retries, so the cycle's first try is N + 1."""
    assert first == first_try_of_cycle(max_tries=max_tries, retries=retries)

"""Repairs in place: the pure rules, and ``RepairSteps`` carrying them out against a fake remote system.

The fake keeps a job's state and repair history the way Databricks does (a repair based on a stale
``latest_repair_id`` is refused), so a crash at any step and two racing tries are replayed exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from resumable_triggers.resume import (
    Decision,
    JobPhase,
    JobStatus,
    RepairHistory,
    RepairIntent,
    RepairRefused,
    ResumeRecord,
    plan_after_status,
)
from resumable_triggers.resume._repair import (
    IntentOutcome,
    RepairSteps,
    intent_outcome,
    next_intent,
    repairs_left,
)

FAILED = JobStatus(JobPhase.FAILED, "TERMINATED/FAILED", "task ingest failed")
RUNNING = JobStatus(JobPhase.ACTIVE, "RUNNING")
RECORD = ResumeRecord(kind="databricks", token="rt-x-c1-g0", cycle=1, generation=0, external_id=7)


class SimulatedCrash(Exception):
    """Stands in for the worker dying at this point."""


@dataclass
class FakeWorkspace:
    """One job: its status and the ids of its accepted repairs. ``crash_after_send`` applies the next
    repair and then raises, as a worker killed before the answer arrived."""

    status: JobStatus = FAILED
    repairs: list[int] = field(default_factory=list)
    sent: list[int | None] = field(default_factory=list)
    crash_after_send: bool = False

    def history(self) -> RepairHistory:
        return RepairHistory(count=len(self.repairs), latest=self.repairs[-1] if self.repairs else None)

    def view(self) -> tuple[JobStatus, RepairHistory]:
        return self.status, self.history()

    def send(self, after: int | None, status: JobStatus) -> int:
        self.sent.append(after)
        if self.status.phase is not JobPhase.FAILED or after != self.history().latest:
            raise RepairRefused("INVALID_PARAMETER_VALUE: the latest repair is another one")
        self.repairs.append(100 + len(self.repairs))
        self.status = RUNNING
        if self.crash_after_send:
            self.crash_after_send = False
            raise SimulatedCrash
        return self.repairs[-1]


@dataclass
class Store:
    records: list[ResumeRecord] = field(default_factory=list)

    @property
    def last(self) -> ResumeRecord:
        return self.records[-1]


def steps(workspace: FakeWorkspace, store: Store, *, max_repairs: int = 1) -> RepairSteps:
    return RepairSteps(
        max_repairs=max_repairs,
        view=workspace.view,
        send=workspace.send,
        save=store.records.append,
        log=logging.getLogger("test_repair"),
    )


def carry_out(workspace: FakeWorkspace, store: Store, record: ResumeRecord, **kw: int) -> ResumeRecord | None:
    status, history = workspace.view()
    return steps(workspace, store, **kw).carry_out(record, status, history)


def test_intent_is_settled_by_the_history_alone() -> None:
    """A history unchanged since the intent means the request never took effect; any newer repair
    (ours or an overlapping try's) means it was accepted."""
    intent = RepairIntent(after=None, number=1)
    assert IntentOutcome.NEVER_SENT is intent_outcome(intent, RepairHistory(count=0, latest=None))
    assert IntentOutcome.ACCEPTED is intent_outcome(intent, RepairHistory(count=1, latest=5))
    later = RepairIntent(after=5, number=2)
    assert IntentOutcome.NEVER_SENT is intent_outcome(later, RepairHistory(count=1, latest=5))
    assert IntentOutcome.ACCEPTED is intent_outcome(later, RepairHistory(count=2, latest=9))


def test_repairs_left_counts_the_jobs_own_history() -> None:
    """The budget is the job's own count, so every try agrees on it, however many crashed."""
    assert [2, 1, 0, 0] == [
        repairs_left(RepairHistory(count=n, latest=None if n == 0 else n), max_repairs=2) for n in range(4)
    ]
    assert RepairIntent(after=5, number=2) == next_intent(RepairHistory(count=1, latest=5))


def test_history_with_repairs_but_no_latest_id_is_refused() -> None:
    """A history that cannot serve as the lock (count and latest disagree) is not a value at all."""
    with pytest.raises(ValueError):
        RepairHistory(count=1, latest=None)


def test_failed_job_with_repairs_left_is_repaired_not_resubmitted() -> None:
    """The pure decision: a retry that finds its job failed repairs it while repairs are left, and
    replaces it (a new generation and token) only when none are."""

    def mint(cycle: int, generation: int) -> ResumeRecord:
        return ResumeRecord(kind="databricks", token=f"t{generation}", cycle=cycle, generation=generation)

    assert Decision.REPAIR is plan_after_status(RECORD, FAILED, mint=mint, repairs_left=1).decision
    resubmit = plan_after_status(RECORD, FAILED, mint=mint, repairs_left=0)
    assert (Decision.TERMINAL_RESUBMIT, 1) == (resubmit.decision, resubmit.record.generation)
    gone = JobStatus(JobPhase.GONE, "GONE")
    assert Decision.TERMINAL_RESUBMIT is plan_after_status(RECORD, gone, mint=mint, repairs_left=1).decision


def test_repair_stores_its_intent_before_the_request_and_clears_it_after() -> None:
    """The record names the pending repair (and the latest repair id it is based on) before
    runs/repair is sent, and no longer once it was accepted."""
    workspace, store = FakeWorkspace(), Store()
    repaired = carry_out(workspace, store, RECORD)
    assert [RepairIntent(after=None, number=1), None] == [r.repair_intent for r in store.records]
    assert (RECORD, [None], [100]) == (repaired, workspace.sent, workspace.repairs)


def test_crash_after_the_repair_was_accepted_does_not_repair_again() -> None:
    """Killed after Databricks accepted the repair but before the answer arrived: the next try finds
    a repair newer than the intent's view, settles it as accepted and watches; one repair in all."""
    workspace, store = FakeWorkspace(crash_after_send=True), Store()
    with pytest.raises(SimulatedCrash):
        carry_out(workspace, store, RECORD)
    pending = store.last
    assert RepairIntent(after=None, number=1) == pending.repair_intent

    assert RECORD == carry_out(workspace, store, pending)
    assert ([100], [None], None) == (workspace.repairs, workspace.sent, store.last.repair_intent)


def test_crash_before_the_repair_was_sent_sends_it_on_the_next_try() -> None:
    """Killed after storing the intent but before runs/repair went out: the history is as the intent
    saw it, so the next try sends the repair itself, once."""
    workspace, store = FakeWorkspace(), Store()
    pending = RECORD.with_repair_intent(RepairIntent(after=None, number=1))
    assert RECORD == carry_out(workspace, store, pending)
    assert ([100], [None]) == (workspace.repairs, workspace.sent)


def test_two_overlapping_tries_make_one_repair() -> None:
    """Both tries read the same history and both send a repair based on it: the lock accepts the
    first and refuses the second, which re-reads the history and watches the first's repair."""
    workspace, store = FakeWorkspace(), Store()
    status, history = workspace.view()
    first, second = steps(workspace, store), steps(workspace, store)
    assert RECORD == first.carry_out(RECORD, status, history)
    assert RECORD == second.carry_out(RECORD, status, history)  # the stale view of an overlapping try
    assert ([100], [None, None]) == (workspace.repairs, workspace.sent)


def test_failed_again_after_the_last_allowed_repair_stands() -> None:
    """With ``max_repairs`` spent (counted on the job), the failure stands: no request is sent."""
    workspace, store = FakeWorkspace(repairs=[100]), Store()
    assert None is carry_out(workspace, store, RECORD, max_repairs=1)
    assert [] == workspace.sent
    assert RECORD == carry_out(workspace, store, RECORD, max_repairs=2)
    assert ([100, 101], [100]) == (workspace.repairs, workspace.sent)


def test_refusal_with_the_history_unchanged_leaves_the_failure_standing() -> None:
    """A repair the workspace refuses for its own reasons (nobody else repaired) is not retried
    forever: the failure stands, and the record no longer claims a pending repair."""

    class Refusing(FakeWorkspace):
        def send(self, after: int | None, status: JobStatus) -> int:
            self.sent.append(after)
            raise RepairRefused("INVALID_STATE: run is too old to repair")

    workspace, store = Refusing(), Store()
    assert None is carry_out(workspace, store, RECORD)
    assert (None, [None]) == (store.last.repair_intent, workspace.sent)

"""Repairing a failed job in place: at most ``max_repairs`` per logical attempt, each one exactly once.

Some systems can re-run just the failed parts of a finished job on the same job (Databricks' repair
of a multi-task run): hours of compute saved over a fresh submit. A repair is made crash-safe the way
a submit is: the intent is stored before the request, and what a crash left open is settled by the
remote system's own history, never by guessing::

    job failed, repairs left ─▶ store RepairIntent(after=latest repair id) ─▶ repair(after) ─▶ clear ─▶ watch
                                   ▲ a crash anywhere here: the next try reads the job's repair history
                                   │   latest repair == intent.after ... NEVER_SENT: send it now
                                   │   latest repair != intent.after ... ACCEPTED: watch the repaired job

Two overlapping tries never both repair: each sends the latest repair id it saw, and the remote
system refuses a repair based on a stale view (Databricks' ``latest_repair_id`` check is the lock).
The refused try reads the history again and finds the other's repair ACCEPTED. The count of repairs
is the job's own history, so every try (and every crash) agrees on how many are left.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from resumable_triggers.resume._decision import JobPhase, JobStatus
from resumable_triggers.resume._record import RepairIntent, ResumeRecord

__all__ = [
    "IntentOutcome",
    "RepairHistory",
    "RepairRefused",
    "RepairSteps",
    "intent_outcome",
    "next_intent",
    "repairs_left",
]


class RepairRefused(Exception):
    """The remote system refused a repair request (an adapter raises it ``from`` the API's error).

    Refusals are expected: the lock refuses the slower of two racing tries, and a resent request
    whose first copy was applied. The operator then reads the history again to tell which it was.
    """


@dataclass(frozen=True, slots=True)
class RepairHistory:
    """What the remote system says of a job's repairs: how many were accepted, and the latest's id."""

    count: int
    latest: int | None

    def __post_init__(self) -> None:
        if self.count < 0 or (self.count == 0) != (self.latest is None):
            raise ValueError(f"a repair history needs latest None exactly when count is 0, got {self!r}")


class IntentOutcome(str, enum.Enum):
    """What became of a stored ``RepairIntent``; values double as log words."""

    ACCEPTED = "accepted"  # a repair newer than the intent's view exists: ours, or an overlapping try's
    NEVER_SENT = "never_sent"  # the history is as the intent saw it: the request never took effect


def intent_outcome(intent: RepairIntent, history: RepairHistory) -> IntentOutcome:
    """Settle a pending intent from the job's history alone."""
    return IntentOutcome.NEVER_SENT if history.latest == intent.after else IntentOutcome.ACCEPTED


def repairs_left(history: RepairHistory, *, max_repairs: int) -> int:
    """Repairs this logical attempt may still make: the job's own count, so no try can overspend."""
    return max(0, max_repairs - history.count)


def next_intent(history: RepairHistory) -> RepairIntent:
    """The intent to store before asking for the next repair, based on this view of the history."""
    return RepairIntent(after=history.latest, number=history.count + 1)


class _Log(Protocol):
    def info(self, msg: str, /, *args: Any) -> object: ...
    def warning(self, msg: str, /, *args: Any) -> object: ...


@dataclass(frozen=True, slots=True)
class RepairSteps:
    """Carries the rules out for one try. The operator hands in its calls, already wrapped in their
    spans and its bridge: ``view`` reads (status, history) together, ``send(after, status)`` asks for
    the repair and returns its id (or raises ``RepairRefused``), ``save`` stores the record."""

    max_repairs: int
    view: Callable[[], tuple[JobStatus, RepairHistory]]
    send: Callable[[int | None, JobStatus], int]
    save: Callable[[ResumeRecord], None]
    log: _Log

    def carry_out(
        self, record: ResumeRecord, status: JobStatus, history: RepairHistory
    ) -> ResumeRecord | None:
        """Settle a pending intent, then repair once if the job, in this fresh view, is still failed
        with repairs left. The record to watch the job with, or None when its failure stands."""
        job = record.external_id
        if record.repair_intent is not None:
            outcome = intent_outcome(record.repair_intent, history)
            self.log.info(
                "repair %s of job %s was pending when an earlier try stopped: %s",
                record.repair_intent.number,
                job,
                outcome.value.replace("_", " "),
            )
            record = record.with_repair_intent(None)
        if status.phase is not JobPhase.FAILED:
            # Repaired meanwhile (by an earlier or an overlapping try): watch it, never repair twice.
            self.save(record)
            self.log.info("job %s is %s after repair %s; watching it", job, status.state, history.latest)
            return record
        if repairs_left(history, max_repairs=self.max_repairs) == 0:
            self.save(record)
            self.log.info("job %s failed after %s repair(s), the most allowed", job, history.count)
            return None
        intent = next_intent(history)
        self.save(record.with_repair_intent(intent))
        try:
            repair_id = self.send(intent.after, status)
        except RepairRefused as refused:
            status, history = self.view()
            if (
                status.phase is JobPhase.FAILED
                and intent_outcome(intent, history) is IntentOutcome.NEVER_SENT
            ):
                self.save(record)
                self.log.warning("repair of job %s was refused (%s); its failure stands", job, refused)
                return None
            self.log.info(
                "job %s was repaired by an overlapping try (repair %s); watching it", job, history.latest
            )
        else:
            self.log.warning(
                "job %s is %s; repair %s of at most %s accepted (repair id %s): its failed parts run again",
                job,
                status.state,
                intent.number,
                self.max_repairs,
                repair_id,
            )
        self.save(record)
        return record

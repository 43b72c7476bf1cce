"""The resume decision, as pure functions of (stored record, clear cycle, observed job status).

Kept free of I/O so every branch is tested directly; the operator only carries out the plan::

    no record ............................................ FRESH_SUBMIT      (generation 0)
    record of a newer clear cycle ........................ SUPERSEDED        (an orphaned try: the newer
                                                                            try owns the job, this one
                                                                            touches nothing)
    record of an older clear cycle ....................... NEW_CYCLE         (never adopt the old run:
                                                                            the operator cancels it if
                                                                            it still runs, as its
                                                                            trigger's on_kill would)
    record with a token but no id (lost submit response) . SUBMIT_WITH_STORED_TOKEN (same run comes back)
    record with an id, job active ........................ RECONNECT
    record with an id, job succeeded ..................... ALREADY_SUCCEEDED
    record with an id, job failed, repairs left .......... REPAIR            (same job, same generation:
                                                                            its failed parts re-run;
                                                                            see ``_repair``)
    record with an id, job failed/cancelled/gone ......... TERMINAL_RESUBMIT (next generation, new token:
                                                                            a retry must never get the
                                                                            old failed run back)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from resumable_triggers.resume._record import ResumeRecord


class JobPhase(str, enum.Enum):
    """What the framework needs to know of a remote state; adapters map their states onto these."""

    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed, cancelled, timed out, internal error...
    GONE = "gone"  # the remote system no longer knows the job


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One observation of a remote job. ``state`` is the remote system's own name, for logs."""

    phase: JobPhase
    state: str
    message: str = ""
    url: str | None = None
    # ACTIVE, but already being torn down (cancelled, or finishing): a cancel would change nothing.
    # Two deciders on one user action (the trigger's on_kill, the API server's listener) rely on it.
    ending: bool = False

    @property
    def cancellable(self) -> bool:
        return self.phase is JobPhase.ACTIVE and not self.ending


class Decision(str, enum.Enum):
    """Values double as log words; ``METRIC_OF`` maps them onto ``ResumableJobMixin``'s metrics."""

    FRESH_SUBMIT = "fresh_submit"
    NEW_CYCLE = "new_cycle"
    SUBMIT_WITH_STORED_TOKEN = "submit_with_stored_token"
    INSPECT = "inspect"
    RECONNECT = "reconnect"
    ALREADY_SUCCEEDED = "already_succeeded"
    TERMINAL_RESUBMIT = "terminal_resubmit"
    REPAIR = "repair"
    SUPERSEDED = "superseded"

    @property
    def submits(self) -> bool:
        return self in _SUBMITTING

    @property
    def new_token(self) -> bool:
        """A submit with a token no earlier try sent: it cannot hand back a job an earlier try made."""
        return self in _SUBMITTING and self is not Decision.SUBMIT_WITH_STORED_TOKEN


_SUBMITTING = frozenset(
    {Decision.FRESH_SUBMIT, Decision.NEW_CYCLE, Decision.SUBMIT_WITH_STORED_TOKEN, Decision.TERMINAL_RESUBMIT}
)

# Airflow's ResumableJobMixin metric names, so dashboards built for it keep working.
METRIC_OF: dict[Decision, tuple[str, ...]] = {
    Decision.FRESH_SUBMIT: ("resumable_job.fresh_submit",),
    Decision.NEW_CYCLE: ("resumable_job.fresh_submit",),
    Decision.SUBMIT_WITH_STORED_TOKEN: ("resumable_job.reconnect_attempt",),
    Decision.INSPECT: (),
    Decision.RECONNECT: ("resumable_job.reconnect_attempt", "resumable_job.reconnect_success"),
    Decision.ALREADY_SUCCEEDED: ("resumable_job.reconnect_attempt", "resumable_job.already_succeeded"),
    Decision.TERMINAL_RESUBMIT: ("resumable_job.reconnect_attempt", "resumable_job.terminal_resubmit"),
    Decision.REPAIR: ("resumable_job.reconnect_attempt", "resumable_job.repair_on_resume"),
    Decision.SUPERSEDED: (),
}


@dataclass(frozen=True, slots=True)
class Plan:
    decision: Decision
    record: ResumeRecord


# (cycle, generation) -> a new record with its token; supplied by the operator, which knows the identity.
Mint = Callable[[int, int], ResumeRecord]


def plan_start(stored: ResumeRecord | None, *, cycle: int, mint: Mint) -> Plan:
    """What to do before looking at the remote job."""
    if stored is None:
        return Plan(Decision.FRESH_SUBMIT, mint(cycle, 0))
    if stored.cycle > cycle:
        return Plan(Decision.SUPERSEDED, stored)
    if stored.cycle < cycle:
        return Plan(Decision.NEW_CYCLE, mint(cycle, 0))
    if stored.external_id is None:
        return Plan(Decision.SUBMIT_WITH_STORED_TOKEN, stored)
    return Plan(Decision.INSPECT, stored)


def plan_after_status(stored: ResumeRecord, status: JobStatus, *, mint: Mint, repairs_left: int = 0) -> Plan:
    """What to do with a record that names a job, once its status is known. ``repairs_left`` is how
    many repairs of this failed job the operator may still make (0 when it does not repair)."""
    if status.phase is JobPhase.ACTIVE:
        return Plan(Decision.RECONNECT, stored)
    if status.phase is JobPhase.SUCCEEDED:
        return Plan(Decision.ALREADY_SUCCEEDED, stored)
    if status.phase is JobPhase.FAILED and repairs_left > 0:
        return Plan(Decision.REPAIR, stored)
    return Plan(Decision.TERMINAL_RESUBMIT, mint(stored.cycle, stored.generation + 1))


def first_try_of_cycle(*, max_tries: int, retries: int) -> int:
    """The try number that opened the current clear cycle; it identifies the cycle.

    A user's clear sets ``max_tries = try_number + retries``, so the first try of the cycle is
    ``max_tries - retries + 1`` (Airflow computes reschedule start dates the same way).
    """
    return max(1, max_tries - retries + 1)

"""Provider-agnostic resume machinery: the record, the decision, the base operator and trigger.

Subclass ``ResumableDeferrableOperator`` and ``ResumableJobTrigger`` to make any external
job (Databricks, EMR, Spark on Kubernetes...) submit once and survive every restart. A system's own
client should wait between retries of ``submit_job`` with ``current_hurry()``'s ``wait`` when there
is one: a SIGTERM that waits for the submit's answer hurries it, and the supervisor's SIGKILL follows
in 5 s.
"""

from __future__ import annotations

from resumable_triggers._hurry import HURRIED_WAIT_SECONDS, Hurry, current_hurry
from resumable_triggers.resume._decision import (
    Decision,
    JobPhase,
    JobStatus,
    Plan,
    first_try_of_cycle,
    plan_after_status,
    plan_start,
)
from resumable_triggers.resume._defaults import default_deferrable
from resumable_triggers.resume._errors import (
    JobFailed,
    KilledByUser,
    ResumableJobError,
    TrySuperseded,
    WatchLost,
)
from resumable_triggers.resume._operator import ResumableDeferrableOperator
from resumable_triggers.resume._record import (
    CorruptRecord,
    ExternalId,
    ForeignRecord,
    RecordProblem,
    RepairIntent,
    ResumeRecord,
    UnknownRecordVersion,
    derive_token,
)
from resumable_triggers.resume._repair import RepairHistory, RepairRefused
from resumable_triggers.resume._signals import CheckpointGuard, SigtermReceived
from resumable_triggers.resume._trigger import EventOutcome, JobEvent, ResumableJobTrigger, WatchArgs

__all__ = [
    "HURRIED_WAIT_SECONDS",
    "CheckpointGuard",
    "CorruptRecord",
    "Decision",
    "EventOutcome",
    "ExternalId",
    "ForeignRecord",
    "Hurry",
    "JobEvent",
    "JobFailed",
    "JobPhase",
    "JobStatus",
    "KilledByUser",
    "Plan",
    "RecordProblem",
    "RepairHistory",
    "RepairIntent",
    "RepairRefused",
    "ResumableDeferrableOperator",
    "ResumableJobError",
    "ResumableJobTrigger",
    "ResumeRecord",
    "SigtermReceived",
    "TrySuperseded",
    "UnknownRecordVersion",
    "WatchArgs",
    "WatchLost",
    "current_hurry",
    "default_deferrable",
    "derive_token",
    "first_try_of_cycle",
    "plan_after_status",
    "plan_start",
]

"""What a resumable operator fails a task with on purpose, under one root a caller can catch.

The hierarchy::

    ResumableJobError (AirflowException)   anything the operator fails a try with on purpose
    ├── JobFailed                          the job ended without success; ``event`` says how
    ├── KilledByUser                       a user stopped the task while it held a job
    ├── WatchLost                          the trigger lost track of the job (it may be healthy)
    └── TrySuperseded                      a newer try owns the job; this one leaves it alone

Each is an ``AirflowException``, so Airflow fails the try and retries it as configured; a retry
resumes from the stored record, never submitting twice. Internal conditions stay out of it:
``RecordProblem`` (an unreadable record, handled by quarantine) and ``SigtermReceived`` (control
flow) never reach a caller.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException

from resumable_triggers.resume._record import ExternalId
from resumable_triggers.resume._trigger import JobEvent

__all__ = ["JobFailed", "KilledByUser", "ResumableJobError", "TrySuperseded", "WatchLost"]


class ResumableJobError(AirflowException):
    """Base class of every error a resumable operator fails a task with on purpose."""


class JobFailed(ResumableJobError):
    """The external job ended without success. The next try submits a fresh job (a new generation)."""

    def __init__(self, event: JobEvent) -> None:
        super().__init__(
            f"job {event.external_id} ended in state {event.state}: {event.message or 'no message'}"
            + (f" ({event.url})" if event.url else "")
        )
        self.event = event


class KilledByUser(ResumableJobError):
    """A user marked the running task failed or cleared it while it held a job."""


class WatchLost(ResumableJobError):
    """The trigger gave up watching ``external_id`` (error budget spent, or a permanent error).

    The job may be healthy: a retry reconnects to it without submitting again, and after a permanent
    error fails at its first status read, in seconds, with the same cause.
    """

    def __init__(self, external_id: ExternalId, message: str) -> None:
        self.external_id = external_id
        super().__init__(
            f"lost track of job {external_id}: {message}; the job may still be running, and a retry "
            "reconnects to it without submitting again"
        )


class TrySuperseded(ResumableJobError):
    """This try is no longer the task's current one (a clear started a newer cycle, or the API server
    sees another state): the newer try owns the job, which this one leaves running."""

"""What a resumable operator's subclass implements: its job's identity and the calls that reach it.

``ResumableDeferrableOperator`` (``_operator``) owns everything else. The hooks are async because each
remote call is written once: the worker runs it through ``_bridge.run_blocking``, the triggerer on
its loop. Required: ``resume_key``, ``job_kind``, ``submit_job``, ``job_status``, ``cancel_job``,
``job_trigger``. Optional: validation, preparation, a token salt, side effects before a new job, the
finished job's event and result, and repairing a failed job in place (``max_repairs`` > 0 with
``repair_view`` and ``repair_job``; the rules are in ``_repair``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from resumable_triggers.resume._decision import JobStatus
from resumable_triggers.resume._record import ExternalId
from resumable_triggers.resume._repair import RepairHistory
from resumable_triggers.resume._trigger import JobEvent, ResumableJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class JobContract(BaseOperator):
    """The hooks a resumable operator implements (see the module docstring)."""

    # task_state_store key; renaming it on a deployed operator orphans every in-flight record.
    resume_key: ClassVar[str]
    # Written into each record, so a value written by another kind of job is recognised as foreign.
    job_kind: ClassVar[str]
    external_id_xcom_key: ClassVar[str] = "external_id"
    url_xcom_key: ClassVar[str] = "job_url"
    event_type: ClassVar[type[JobEvent]] = JobEvent
    # Repairs of a failed job per logical attempt (see ``_repair``); 0: a failed job's failure stands.
    max_repairs: int = 0

    def validate_job(self) -> None:
        """Check the (rendered) job spec before any remote call; raise ValueError naming the field."""

    def prepare(self, context: Context) -> None:
        """Look up connections and the like: runs before any window in which SIGTERM is guarded."""

    def token_salt(self) -> str:
        """Extra input to every idempotency token (e.g. a user-supplied token); empty by default."""
        return ""

    async def submit_job(self, token: str, context: Context) -> ExternalId:
        """Submit the job with this idempotency token: the same token must yield the same job."""
        raise NotImplementedError

    async def before_new_job(self, context: Context) -> None:
        """Runs just before a submit with a new token, never before a resubmit with a stored one (which
        may get an earlier try's job back): the place for side effects that must spare our own job."""

    async def job_status(self, external_id: ExternalId) -> JobStatus:
        raise NotImplementedError

    async def cancel_job(self, external_id: ExternalId) -> None:
        raise NotImplementedError

    def job_trigger(self, external_id: ExternalId) -> ResumableJobTrigger[Any]:
        raise NotImplementedError

    async def job_event(self, external_id: ExternalId, status: JobStatus) -> JobEvent:
        """The event for a job found finished by the worker; by default the trigger's own builder, so a
        job finished in the worker reads exactly like one reported by the triggerer."""
        return await self.job_trigger(external_id).terminal_event(status)

    def job_result(self, context: Context, event: JobEvent) -> Any:
        """The task's return value once the job succeeded (pushed as ``return_value``)."""
        return event.external_id

    def wants_repair(self, status: JobStatus) -> bool:
        """Whether this failure is one to repair (say, not a person's cancel). Asked with ``max_repairs``
        above 0 only."""
        return True

    async def repair_view(self, external_id: ExternalId) -> tuple[JobStatus, RepairHistory]:
        """The job's status and repair history, read together (one consistent view)."""
        raise NotImplementedError

    async def repair_job(self, external_id: ExternalId, *, after: int | None, status: JobStatus) -> int:
        """Repair the failed job based on its latest repair id ``after``; the repair's id. Raise
        ``RepairRefused`` (from the API's error) when the remote system refuses the request."""
        raise NotImplementedError

    def remote_name(self) -> str:
        """What remote calls talk to, for messages (e.g. ``Databricks at https://adb-1...``)."""
        return "the external system"

"""The provider-agnostic operator: submit once, defer, re-enter the deferral on every later attempt.

A new external system plugs in by subclassing ``ResumableDeferrableOperator`` and implementing
``submit_job`` (with an idempotency token), ``job_status``, ``cancel_job`` and ``job_trigger``; the
base owns the resume record, the decision, deferral, the worker-side poll of ``deferrable=False``,
SIGTERM checkpoints and kill semantics. Remote calls are written once, async; the worker runs them
through ``_bridge.run_blocking``, the triggerer on its loop. What it fails a task with on purpose is
drawn in ``_errors``; the spans it emits (the decision, each remote call, a SIGTERM) in ``_tracing``.
A system that can repair a failed job in place opts in with ``max_repairs`` and the repair hooks; the
rules that make each repair happen once are drawn in ``_repair``.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk.exceptions import AirflowTaskTimeout
from airflow.sdk.observability import stats

from resumable_triggers._hurry import hurried, hurrying
from resumable_triggers.resume._bridge import run_blocking
from resumable_triggers.resume._contract import JobContract
from resumable_triggers.resume._decision import (
    METRIC_OF,
    Decision,
    JobPhase,
    JobStatus,
    Plan,
    first_try_of_cycle,
    plan_after_status,
    plan_start,
)
from resumable_triggers.resume._defaults import default_deferrable
from resumable_triggers.resume._errors import JobFailed, KilledByUser, TrySuperseded, WatchLost
from resumable_triggers.resume._kill import (
    WATCH_MARKER_KEY,
    SigtermVerdict,
    WatchMarker,
    state_seen_by_api_server,
)
from resumable_triggers.resume._record import (
    CorruptRecord,
    ExternalId,
    ForeignRecord,
    RecordProblem,
    ResumeRecord,
    derive_token,
)
from resumable_triggers.resume._repair import RepairHistory, RepairSteps, repairs_left
from resumable_triggers.resume._signals import CheckpointGuard, SigtermReceived, timeout_waits_for_answer
from resumable_triggers.resume._state_store import RecordKeeper
from resumable_triggers.resume._tracing import RemoteCall, TaskTrace
from resumable_triggers.resume._trigger import EventOutcome, JobEvent

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")

try:  # AIP-96 did not ship in Airflow 3.3; use its checkpoint exception where a later Airflow has it.
    from airflow.sdk.exceptions import AirflowTaskCheckpointed  # type: ignore[attr-defined]
except ImportError:
    AirflowTaskCheckpointed = None


class ResumableDeferrableOperator(JobContract):
    """Base for operators that run one long external job per logical attempt, and survive anything.

    ``deferrable`` (default True, unless the deployment set ``[operators] default_deferrable``): watch
    the job from the triggerer. With False the worker polls, under the same resume rules, and a worker
    shutdown hands the job over to the triggerer.

    ``cancel_on_kill`` (default True): cancel the job when a *user* stops the task (mark
    failed/success, clear). Worker shutdowns, evictions and triggerer restarts never cancel it.

    ``polling_period_seconds`` (default 30): seconds between polls of the job's status.
    """

    _trace: TaskTrace  # bound to the running try by execute and execute_complete

    def __init__(
        self,
        *,
        deferrable: bool | None = None,
        cancel_on_kill: bool = True,
        polling_period_seconds: float = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if polling_period_seconds <= 0:
            raise ValueError(f"polling_period_seconds must be > 0, got {polling_period_seconds!r}")
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.cancel_on_kill = cancel_on_kill
        self.polling_period_seconds = polling_period_seconds
        self._guard = CheckpointGuard()
        self._pushed: tuple[ExternalId, str | None] | None = None  # ids this process pushed as XComs

    # -- the machinery --------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        self._trace = TaskTrace.of_try(type(self).__name__, self.resume_key, context["ti"])
        self.validate_job()
        with self._guard.supervisor_call():
            self.prepare(context)
        plan, status = self._decide(context)
        record = plan.record
        if plan.decision is Decision.SUPERSEDED:
            raise TrySuperseded(
                f"the resume record belongs to a newer clear cycle ({record.cycle}): a newer try owns job "
                f"{record.external_id}, which this one leaves alone"
            )
        if plan.decision is Decision.ALREADY_SUCCEEDED:
            assert record.external_id is not None
            assert status is not None
            return self._finish(context, record, self._event_from_status(record.external_id, status))
        if plan.decision.submits:
            self._records(context).save(record)
            submit = self._submit(context, record.token, new_token=plan.decision.new_token)
            return self._hold(context, record, persist=True, status=None, submit=(plan.decision, submit))
        return self._hold(context, record, persist=False, status=status)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Where the task resumes when the trigger fired."""
        self._trace = TaskTrace.of_try(type(self).__name__, self.resume_key, context["ti"])
        job_event = self.event_type.from_payload(event)
        with self._guard.supervisor_call():
            self.prepare(context)
        with self._guard.armed():
            try:
                if self._guard.take_noted():  # a SIGTERM while the task resumed: judged with the job
                    raise SigtermReceived
                if job_event.outcome is EventOutcome.WATCH_ERROR:
                    # The job may be healthy: fail this try, and let a retry reconnect to the same job
                    # (never a new submit). After an outage the retry resumes the watch; after a
                    # permanent error (rejected token, missing permission) it succeeds if someone
                    # fixed the cause meanwhile, and otherwise fails at its first status read, in
                    # seconds, with the same cause: retries cost one request each, not a budget.
                    raise WatchLost(job_event.external_id, job_event.message)
                try:
                    record = self._records(context).load()
                except RecordProblem as problem:
                    self.log.warning("resume record is unreadable (%s)", problem)
                    record = None
                if record is None or record.external_id != job_event.external_id:
                    self.log.warning(
                        "resume record does not name job %s; finishing from the event alone",
                        job_event.external_id,
                    )
                    record = None
                if record is not None and job_event.outcome is EventOutcome.FAILED:
                    repaired = self._repair_failed(context, record, _status_of(job_event))
                    if repaired is not None:
                        return self._hold(context, repaired, persist=False, status=None)
                return self._finish(context, record, job_event)
            except SigtermReceived:
                return self._on_sigterm(context, job_event.external_id)

    def on_kill(self) -> None:
        """Deliberately does not cancel: see ``CheckpointGuard`` and ``cancel_on_kill``.

        Airflow calls this from its SIGTERM handler, where no supervisor call is safe and a worker
        shutdown cannot be told from a user's kill, and then lets the task go on. While a job is held
        the guard replaces that handler and decides in the main thread; outside those windows the
        SIGTERM is noted, and decided on when the next window opens (before any submit).
        """
        self._guard.note()

    def _decide(self, context: Context) -> tuple[Plan, JobStatus | None]:
        """The plan, and the job's status when deciding needed one (so it is read once)."""
        return self._trace.decide(lambda: self._plan(context))

    def _plan(self, context: Context) -> tuple[Plan, JobStatus | None]:
        ti = context["ti"]
        cycle = first_try_of_cycle(max_tries=ti.max_tries, retries=self.retries or 0)

        def mint(cycle: int, generation: int, salt: str = self.token_salt()) -> ResumeRecord:
            token = derive_token(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                task_id=ti.task_id,
                map_index=ti.map_index if ti.map_index is not None else -1,
                cycle=cycle,
                generation=generation,
                salt=salt,
            )
            return ResumeRecord(kind=self.job_kind, token=token, cycle=cycle, generation=generation)

        try:
            stored = self._records(context).load()
        except (ForeignRecord, CorruptRecord) as problem:
            self._records(context).quarantine(problem, operator=type(self).__name__)
            # A salt keeps the fresh token apart from every token the unreadable record may have used.
            salt = f"{self.token_salt()}quarantined-{ti.try_number}"
            plan = Plan(Decision.FRESH_SUBMIT, mint(cycle, 0, salt=salt))
            self._count(plan.decision)
            return plan, None
        plan = plan_start(stored, cycle=cycle, mint=mint)
        if plan.decision is Decision.NEW_CYCLE and stored is not None and stored.external_id is not None:
            self._cancel_left_behind(stored.external_id)
        status = None
        if plan.decision is Decision.INSPECT:
            stored_id = plan.record.external_id
            assert stored_id is not None
            status = self._call(RemoteCall.STATUS, self.job_status(stored_id), stored_id)
            self.log.info("stored job %s is %s", stored_id, status.state)
            history = None
            if self._repairable(status):
                status, history = self._call(RemoteCall.REPAIR_VIEW, self.repair_view(stored_id), stored_id)
            left = 0 if history is None else repairs_left(history, max_repairs=self.max_repairs)
            plan = plan_after_status(plan.record, status, mint=mint, repairs_left=left)
            if plan.decision is Decision.REPAIR:
                assert history is not None
                repaired = self._repair(context, plan.record, status, history)
                # Refused for good: a retry replaces the failed job, as it would without repairs.
                plan = (
                    Plan(Decision.REPAIR, repaired)
                    if repaired
                    else plan_after_status(plan.record, status, mint=mint)
                )
            elif plan.record.repair_intent is not None and status.phase is not JobPhase.FAILED:
                # Running or succeeded again while a repair was pending: that repair was accepted.
                self.log.info("the repair pending on job %s was accepted before this try", stored_id)
                plan = Plan(plan.decision, plan.record.with_repair_intent(None))
                self._records(context).save(plan.record)
        self.log.info(
            "resume decision: %s (cycle %s, generation %s, job %s)",
            plan.decision.value,
            plan.record.cycle,
            plan.record.generation,
            plan.record.external_id,
        )
        self._count(plan.decision)
        return plan, status

    def _cancel_left_behind(self, external_id: ExternalId) -> None:
        """A user cleared the task: the new cycle never adopts the old job, and no one else may be left
        to cancel it (its trigger's ``on_kill`` runs only where a triggerer ran the trigger)."""
        if not self.cancel_on_kill:
            return
        status = self._call(RemoteCall.STATUS, self.job_status(external_id), external_id)
        if status.cancellable:
            self.log.warning("the task was cleared while job %s ran; cancelling that job", external_id)
            self._call(RemoteCall.CANCEL, self.cancel_job(external_id), external_id)

    async def _submit(self, context: Context, token: str, *, new_token: bool) -> ExternalId:
        if new_token:
            await self.before_new_job(context)
        return await self.submit_job(token, context)

    def _hold(
        self,
        context: Context,
        record: ResumeRecord,
        *,
        persist: bool,
        status: JobStatus | None,
        submit: tuple[Decision, Coroutine[Any, Any, ExternalId]] | None = None,
    ) -> Any:
        """The window in which this worker holds a live job (from its submit on, when ``submit`` is
        given): SIGTERM here becomes a checkpoint, or a user's kill that cancels the job."""
        external_id = record.external_id
        with self._guard.armed():
            try:
                if submit is None:
                    if self._guard.take_noted():  # a SIGTERM while the task started: judged with the job
                        raise SigtermReceived
                else:
                    self._stop_if_killed_before_submit(context, submit[1])
                    # A SIGTERM during the submit waits for its answer, which may name a new job: a
                    # user's kill (mark failed) is then judged with that job in hand and cancels it,
                    # where an interrupted submit would leave it running with nobody to stop it.
                    # An execution_timeout waits a little for the answer too, so its job gets cancelled.
                    # Both hurry the submit: the supervisor's SIGKILL follows in 5 s, the grace ends in 5.
                    with self._guard.awaiting_answer() as hurry, timeout_waits_for_answer(hurry):
                        external_id = self._call(RemoteCall.SUBMIT, submit[1], record)
                    self.log.info(
                        "submitted job %s (%s, token %s)", external_id, submit[0].value, record.token
                    )
                assert external_id is not None
                record = record.with_external_id(external_id)
                if persist:
                    self._records(context).save(record)
                if status is None:
                    status = self._call(RemoteCall.STATUS, self.job_status(external_id), external_id)
                self._announce(context, external_id, status)
                if self.deferrable:
                    self._defer(context, external_id)
                return self._poll_in_worker(context, record, status)
            except SigtermReceived as stop:
                if external_id is None:  # the submit failed by itself while the SIGTERM waited
                    raise (stop.__context__ or stop) from None
                if record.external_id is None:  # the SIGTERM waited for this answer: record the job first
                    self.log.info("SIGTERM during the submit: hurried it (no backoff) to job %s", external_id)
                    record = record.with_external_id(external_id)
                    self._records(context).save(record)
                return self._on_sigterm(context, external_id)
            except AirflowTaskTimeout:
                if record.external_id is None and external_id is not None:  # held for the submit's answer
                    self._records(context).save(record.with_external_id(external_id))
                if self.cancel_on_kill and external_id is not None:
                    self.log.warning("execution_timeout reached; cancelling job %s", external_id)
                    self._call(RemoteCall.CANCEL, self.cancel_job(external_id), external_id)
                raise

    def _stop_if_killed_before_submit(self, context: Context, submit: Coroutine[Any, Any, Any]) -> None:
        """A SIGTERM noted before this window (the task was still starting or deciding): a user's
        kill or a superseded try submits nothing; a worker shutdown submits, and the job is then
        checkpointed like any other (its token is stored: a retry gets the same job back)."""
        if not self._guard.take_noted():
            return
        state, verdict = self._judge_sigterm(context)
        if verdict is SigtermVerdict.CHECKPOINT:
            self.log.info("SIGTERM before the submit while the task is running (a worker shutdown)")
            return
        submit.close()  # never sent
        if verdict is SigtermVerdict.USER_KILL:
            raise KilledByUser(f"task was stopped by a user ({state}) before its job was submitted")
        raise TrySuperseded(f"this try is no longer current (the task is {state}); nothing submitted")

    def _poll_in_worker(self, context: Context, record: ResumeRecord, status: JobStatus) -> Any:
        external_id = record.external_id
        assert external_id is not None
        last_state = status.state
        while True:
            while status.phase is JobPhase.ACTIVE:
                time.sleep(self.polling_period_seconds)
                status = self._call(RemoteCall.STATUS, self.job_status(external_id), external_id)
                if status.state != last_state:
                    self.log.info("job %s is %s", external_id, status.state)
                    last_state = status.state
            repaired = self._repair_failed(context, record, status)
            if repaired is None:
                return self._finish(context, record, self._event_from_status(external_id, status))
            record = repaired
            status = self._call(RemoteCall.STATUS, self.job_status(external_id), external_id)

    # -- repairs (see ``_repair``) ----------------------------------------------------------------------

    def _repairable(self, status: JobStatus) -> bool:
        return status.phase is JobPhase.FAILED and self.max_repairs > 0 and self.wants_repair(status)

    def _repair_failed(
        self, context: Context, record: ResumeRecord, status: JobStatus
    ) -> ResumeRecord | None:
        """Repair a job found failed, if this operator repairs and repairs are left; else None."""
        if not self._repairable(status):
            return None
        external_id = record.external_id
        assert external_id is not None
        status, history = self._call(RemoteCall.REPAIR_VIEW, self.repair_view(external_id), external_id)
        return self._repair(context, record, status, history)

    def _repair(
        self, context: Context, record: ResumeRecord, status: JobStatus, history: RepairHistory
    ) -> ResumeRecord | None:
        external_id = record.external_id
        assert external_id is not None

        def view() -> tuple[JobStatus, RepairHistory]:
            return self._call(RemoteCall.REPAIR_VIEW, self.repair_view(external_id), external_id)

        def send(after: int | None, status: JobStatus) -> int:
            return self._call(
                RemoteCall.REPAIR, self.repair_job(external_id, after=after, status=status), external_id
            )

        steps = RepairSteps(
            max_repairs=self.max_repairs, view=view, send=send, save=self._records(context).save, log=self.log
        )
        repaired = steps.carry_out(record, status, history)
        if repaired is not None:
            stats.incr("resumable_job.repair", tags={"operator": type(self).__name__})
        return repaired

    def _finish(self, context: Context, record: ResumeRecord | None, event: JobEvent) -> Any:
        # The finishing try names its job itself: Airflow cleared the XComs when this try started
        # (a retry that finds the job done), or a SIGTERM checkpointed before they were pushed.
        self._push_ids(context, event.external_id, event.url)
        if event.outcome is not EventOutcome.SUCCEEDED:
            raise JobFailed(event)
        self.log.info("job %s succeeded%s", event.external_id, f" ({event.url})" if event.url else "")
        if record is not None and not record.success_reported:
            self._records(context).save(record.reporting_success())
        return self.job_result(context, event)

    def _event_from_status(self, external_id: ExternalId, status: JobStatus) -> JobEvent:
        return self._call(RemoteCall.EVENT, self.job_event(external_id, status), external_id)

    def _defer(self, context: Context, external_id: ExternalId) -> None:
        # The marker tells a trigger's on_kill which job the latest deferral watches (see ``_kill``);
        # pushed even with do_xcom_push=False, since it is bookkeeping, not a result.
        marker = WatchMarker(try_number=context["ti"].try_number, external_id=external_id)
        with self._guard.supervisor_call():
            context["ti"].xcom_push(key=WATCH_MARKER_KEY, value=marker.to_xcom())
        self.defer(trigger=self.job_trigger(external_id), method_name="execute_complete")

    def _judge_sigterm(self, context: Context) -> tuple[str | None, SigtermVerdict]:
        """How the API server sees the task after a SIGTERM, and what that makes of it (``_kill``)."""
        return self._trace.sigterm(lambda: state_seen_by_api_server(context["ti"], self.log))

    def _on_sigterm(self, context: Context, external_id: ExternalId) -> Any:
        state, verdict = self._judge_sigterm(context)
        if verdict is SigtermVerdict.USER_KILL:
            if self.cancel_on_kill:
                self.log.warning("task was stopped by a user (%s); cancelling job %s", state, external_id)
                with hurrying(hurried()):  # the supervisor's SIGKILL is due 5 s after its SIGTERM
                    self._call(RemoteCall.CANCEL, self.cancel_job(external_id), external_id)
                raise KilledByUser(f"task was stopped by a user; job {external_id} was cancelled")
            raise KilledByUser(f"task was stopped by a user; job {external_id} keeps running")
        if verdict is SigtermVerdict.SUPERSEDED:
            raise TrySuperseded(
                f"this try is no longer current (the task is {state}); job {external_id} keeps running"
            )
        # "running" may be a newer try's (states are keyed by task): a zombie try lands here too, and
        # Airflow then refuses its deferral, so the job is never cancelled either way.
        self.log.info(
            "SIGTERM while the task is running (a worker shutdown, or a newer try took over): "
            "checkpointing job %s into a deferral; it keeps running",
            external_id,
        )
        if AirflowTaskCheckpointed is not None:
            raise AirflowTaskCheckpointed(checkpoint_data={self.external_id_xcom_key: external_id})
        self._defer(context, external_id)

    # -- supervisor calls: always through the guard ----------------------------------------------------

    def _records(self, context: Context) -> RecordKeeper:
        return RecordKeeper(context["task_state_store"], self._guard, self.resume_key, self.job_kind)

    def _announce(self, context: Context, external_id: ExternalId, status: JobStatus) -> None:
        self.log.info("job %s is %s%s", external_id, status.state, f": {status.url}" if status.url else "")
        self._push_ids(context, external_id, status.url)

    def _push_ids(self, context: Context, external_id: ExternalId, url: str | None) -> None:
        if not self.do_xcom_push or self._pushed == (external_id, url):
            return
        with self._guard.supervisor_call():
            context["ti"].xcom_push(key=self.external_id_xcom_key, value=external_id)
            if url:
                context["ti"].xcom_push(key=self.url_xcom_key, value=url)
        self._pushed = (external_id, url)

    def _count(self, decision: Decision) -> None:
        for metric in METRIC_OF[decision]:
            stats.incr(metric, tags={"operator": type(self).__name__})

    def _call(
        self, call: RemoteCall, coro: Coroutine[Any, Any, T], about: ExternalId | ResumeRecord | None = None
    ) -> T:
        """A remote call, run to completion from the worker (see ``_bridge``) inside its span."""
        return self._trace.call(call, lambda: run_blocking(coro, waiting_for=self.remote_name), about)


def _status_of(event: JobEvent) -> JobStatus:
    """A failed event, read as the status it reported (what ``wants_repair`` is asked about)."""
    return JobStatus(JobPhase.FAILED, event.state, event.message, event.url)

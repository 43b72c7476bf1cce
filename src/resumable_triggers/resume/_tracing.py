"""Spans for the resume decision and each remote call a worker makes, through Airflow's own tracing.

Airflow 3.3 traces with OpenTelemetry's global tracer provider: with ``[traces] otel_on`` its settings
install one that exports wherever ``OTEL_TRACES_EXPORTER`` and ``OTEL_EXPORTER_OTLP_*`` point, and the
task runner opens a ``worker.<task_id>`` span around each try. ``ResumableJobMixin`` takes its tracer
from ``opentelemetry.trace`` and names its span ``resumable_job.resume_decision``; so does this module,
with the mixin's attribute names wherever they mean the same thing, so a query written for the mixin
finds ours. With tracing off the API hands out a non-recording tracer: no export, no I/O.

One deferrable try that submits, as a trace shows it::

    worker.etl                            Airflow's: airflow.dag_id, airflow.task_id, ...
     ├── resumable_job.resume_decision    resumable.decision, .cycle, .generation, .external_id
     │    └── resumable_job.status        only when a stored job had to be inspected first
     ├── resumable_job.submit             resumable.token, .generation; .external_id once known
     └── resumable_job.status             resumable.job_state, resumable.job_phase

A SIGTERM while the worker holds a job adds ``resumable_job.sigterm`` (``resumable.sigterm_verdict``,
``resumable.task_state``), followed by the ``resumable_job.cancel`` a user's kill causes. Every span
carries the try's identity under Airflow's own keys (``airflow.dag_id``, ``airflow.task_id``,
``airflow.dag_run.run_id``, ``airflow.task_instance.try_number``, ``airflow.task_instance.map_index``),
so one filter finds a try's spans, ours and Airflow's alike. A call that raises records the exception
and ends with status ERROR (``start_as_current_span``'s default).

Only the worker is traced: a triggerer polls every watched run each interval, with no task span to hang
those polls from; its metrics and logs cover it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from resumable_triggers.resume._decision import JobStatus, Plan
from resumable_triggers.resume._kill import SigtermVerdict, after_sigterm
from resumable_triggers.resume._record import ExternalId, ResumeRecord
from resumable_triggers.resume._trigger import JobEvent

__all__ = [
    "DECISION_SPAN",
    "SIGTERM_SPAN",
    "RemoteCall",
    "TaskTrace",
    "decision_attributes",
    "identity_attributes",
    "result_attributes",
    "sigterm_attributes",
]

# Resolved per span by OpenTelemetry's proxy, so a provider Airflow installs later is still used.
_tracer = trace.get_tracer("resumable_triggers")

Attributes = dict[str, AttributeValue]
T = TypeVar("T")

DECISION_SPAN = "resumable_job.resume_decision"  # ResumableJobMixin's name for the same span
SIGTERM_SPAN = "resumable_job.sigterm"


class RemoteCall(str, enum.Enum):
    """The remote calls a worker makes; each value names its span, ``resumable_job.<value>``."""

    SUBMIT = "submit"
    STATUS = "status"
    CANCEL = "cancel"
    EVENT = "event"  # the finished job's details for the task's event (e.g. its error output)
    REPAIR_VIEW = "repair_view"  # the job's state with its repair history
    REPAIR = "repair"

    @property
    def span_name(self) -> str:
        return f"resumable_job.{self.value}"


class TryIdentity(Protocol):
    """What a span needs of Airflow's task instance (``context["ti"]``)."""

    @property
    def dag_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def try_number(self) -> int: ...
    @property
    def map_index(self) -> int | None: ...


def identity_attributes(ti: TryIdentity) -> Attributes:
    """The try's identity under the keys Airflow's task span uses."""
    return {
        "airflow.dag_id": ti.dag_id,
        "airflow.task_id": ti.task_id,
        "airflow.dag_run.run_id": ti.run_id,
        "airflow.task_instance.try_number": ti.try_number,
        "airflow.task_instance.map_index": ti.map_index if ti.map_index is not None else -1,
    }


def _record_attributes(record: ResumeRecord) -> Attributes:
    attributes: Attributes = {"resumable.cycle": record.cycle, "resumable.generation": record.generation}
    if record.external_id is not None:
        attributes["resumable.external_id"] = str(record.external_id)
    return attributes


def decision_attributes(plan: Plan, status: JobStatus | None) -> Attributes:
    """What was decided, for which cycle and generation, and the stored job's state if it was read."""
    attributes = {"resumable.decision": plan.decision.value, **_record_attributes(plan.record)}
    if status is not None:
        attributes["resumable.prior_status"] = status.state  # the mixin's key for the same fact
    return attributes


def result_attributes(call: RemoteCall, result: object) -> Attributes:
    """What a call's answer adds to its span: the new job's id, a status, an event's outcome."""
    if call is RemoteCall.SUBMIT and isinstance(result, (int, str)):
        return {"resumable.external_id": str(result)}
    if call is RemoteCall.REPAIR and isinstance(result, int):
        return {"resumable.repair_id": str(result)}
    if call is RemoteCall.REPAIR_VIEW and isinstance(result, tuple) and len(result) == 2:
        status, history = result
        return {**result_attributes(RemoteCall.STATUS, status), "resumable.repair_count": history.count}
    if isinstance(result, JobStatus):
        return {"resumable.job_state": result.state, "resumable.job_phase": result.phase.value}
    if isinstance(result, JobEvent):
        return {"resumable.job_state": result.state, "resumable.event_outcome": result.outcome.value}
    return {}


def sigterm_attributes(task_state: str | None, verdict: SigtermVerdict) -> Attributes:
    # An absent state is left out rather than spelled: OpenTelemetry attributes cannot be None.
    attributes: Attributes = {"resumable.sigterm_verdict": verdict.value}
    if task_state is not None:
        attributes["resumable.task_state"] = task_state
    return attributes


@dataclass(frozen=True, slots=True)
class TaskTrace:
    """The spans of one operator's try: each method runs one step inside its span and returns its result.

    ``operator`` is the class name (the mixin's ``operator`` attribute), ``resume_key`` the
    ``task_state_store`` key (the mixin's ``resumable.external_id_key``), ``identity`` the try's
    ``identity_attributes``.
    """

    operator: str
    resume_key: str
    identity: Mapping[str, AttributeValue] = field(default_factory=dict)

    @classmethod
    def of_try(cls, operator: str, resume_key: str, ti: TryIdentity) -> TaskTrace:
        return cls(operator, resume_key, identity_attributes(ti))

    def _base(self) -> Attributes:
        return {"operator": self.operator, "resumable.external_id_key": self.resume_key, **self.identity}

    def decide(self, plan: Callable[[], tuple[Plan, JobStatus | None]]) -> tuple[Plan, JobStatus | None]:
        """``plan()`` (the decision, and the status it read) inside the decision span."""
        with _tracer.start_as_current_span(DECISION_SPAN, attributes=self._base()) as span:
            decided, status = plan()
            span.set_attributes(decision_attributes(decided, status))
            return decided, status

    def call(
        self, call: RemoteCall, run: Callable[[], T], about: ExternalId | ResumeRecord | None = None
    ) -> T:
        """``run()``, the remote call, inside its span; ``about`` is the job it concerns, or for a
        submit the record whose token and generation it submits with."""
        attributes = {"resumable.call": call.value, **self._base()}
        if isinstance(about, ResumeRecord):
            attributes.update(_record_attributes(about), **{"resumable.token": about.token})
        elif about is not None:
            attributes["resumable.external_id"] = str(about)
        with _tracer.start_as_current_span(call.span_name, attributes=attributes) as span:
            result = run()
            span.set_attributes(result_attributes(call, result))
            return result

    def sigterm(self, task_state: Callable[[], str | None]) -> tuple[str | None, SigtermVerdict]:
        """How the API server sees the task (``task_state()``) and what that makes the SIGTERM
        (``after_sigterm``), inside the SIGTERM span."""
        with _tracer.start_as_current_span(SIGTERM_SPAN, attributes=self._base()) as span:
            state = task_state()
            verdict = after_sigterm(state)
            span.set_attributes(sigterm_attributes(state, verdict))
            return state, verdict

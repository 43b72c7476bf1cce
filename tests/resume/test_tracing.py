"""The resume machinery's spans: what their attributes say, and what a worker-side poll emits.

The attribute builders are pure and tested directly; the operator's spans are read back from an
in-memory exporter (``span_exporter``) after a real ``dag.test()`` of the detached-command example.
The Databricks operators' spans against the emulator are in tests/databricks/test_operator_traces.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from resumable_triggers.resume import Decision, JobPhase, JobStatus, Plan, ResumeRecord
from resumable_triggers.resume._kill import SigtermVerdict
from resumable_triggers.resume._tracing import (
    RemoteCall,
    decision_attributes,
    result_attributes,
    sigterm_attributes,
)

pytestmark = pytest.mark.timeout(90)

RECORD = ResumeRecord(kind="k", token="tok-1-0", cycle=1, generation=0)


def test_decision_before_any_job_names_no_job_and_no_prior_status() -> None:
    """A fresh submit has no job yet: the span says the decision, cycle and generation, nothing more."""
    assert {"resumable.decision": "fresh_submit", "resumable.cycle": 1, "resumable.generation": 0} == (
        decision_attributes(Plan(Decision.FRESH_SUBMIT, RECORD), None)
    )


def test_decision_on_an_inspected_job_names_it_and_its_state_as_the_mixin_does() -> None:
    """A reconnect names the stored job (as a string, the mixin's type) and the state it was found in."""
    plan = Plan(Decision.RECONNECT, RECORD.with_external_id(42))
    attributes = decision_attributes(plan, JobStatus(JobPhase.ACTIVE, "RUNNING"))
    assert ("42", "RUNNING", "reconnect") == (
        attributes["resumable.external_id"],
        attributes["resumable.prior_status"],
        attributes["resumable.decision"],
    )


def test_call_results_add_the_new_job_id_a_status_or_nothing() -> None:
    """A submit's answer is the job's id; a status its state and phase; a cancel's None adds nothing."""
    assert [
        {"resumable.external_id": "7"},
        {"resumable.job_state": "TERMINATED/FAILED", "resumable.job_phase": "failed"},
        {},
    ] == [
        result_attributes(RemoteCall.SUBMIT, 7),
        result_attributes(RemoteCall.STATUS, JobStatus(JobPhase.FAILED, "TERMINATED/FAILED")),
        result_attributes(RemoteCall.CANCEL, None),
    ]


def test_sigterm_with_an_unreadable_task_state_leaves_the_state_out() -> None:
    """OpenTelemetry attributes cannot be None: an unknown state is absent, the verdict still there."""
    assert [
        {"resumable.sigterm_verdict": "checkpoint"},
        {"resumable.sigterm_verdict": "user_kill", "resumable.task_state": "failed"},
    ] == [
        sigterm_attributes(None, SigtermVerdict.CHECKPOINT),
        sigterm_attributes("failed", SigtermVerdict.USER_KILL),
    ]


def test_worker_side_poll_traces_each_status_read_then_the_event(
    dagbag: Any, span_exporter: InMemorySpanExporter
) -> None:
    """With deferrable=False every poll is a status span about the job, until one finds it finished;
    the finished job's event is read in an event span. Each span carries the try's identity."""
    dagbag.get_dag("resume_none_in_worker").test()
    spans = sorted(
        (s for s in span_exporter.get_finished_spans() if s.name.startswith("resumable_job.")),
        key=lambda s: s.start_time or 0,
    )
    names = [s.name for s in spans]
    attributes = [dict(s.attributes or {}) for s in spans]
    polls = attributes[2:-1]
    assert ["resumable_job.resume_decision", "resumable_job.submit"] == names[:2]
    assert {"resumable_job.status"} == set(names[2:-1])
    assert "resumable_job.event" == names[-1]
    assert ["active"] * (len(polls) - 1) + ["succeeded"] == [a["resumable.job_phase"] for a in polls]
    assert {attributes[1]["resumable.external_id"]} == {a["resumable.external_id"] for a in attributes[1:]}
    assert {("resume_none_in_worker", "job", 1, -1)} == {
        (
            a["airflow.dag_id"],
            a["airflow.task_id"],
            a["airflow.task_instance.try_number"],
            a["airflow.task_instance.map_index"],
        )
        for a in attributes
    }

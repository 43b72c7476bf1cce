"""The Databricks operators' spans, through real Airflow task execution (``dag.test()``) and the emulator.

The session installs an OpenTelemetry SDK provider with an in-memory exporter (``span_exporter``);
the operator takes its tracer from OpenTelemetry's global API as Airflow's task runner does, so what
these tests read is what an OTLP collector would receive from a worker with ``[traces] otel_on``.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from resumable_triggers.testing import EmulatorHandle

pytestmark = pytest.mark.timeout(90)


def traced_run(dagbag: Any, dag_id: str, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """Run one DAG; return the spans our operator emitted for it, in the order they started."""
    dagbag.get_dag(dag_id).test()
    ours = [
        span
        for span in exporter.get_finished_spans()
        if span.name.startswith("resumable_job.") and (span.attributes or {}).get("airflow.dag_id") == dag_id
    ]
    return sorted(ours, key=lambda span: span.start_time or 0)


def attr(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {}).get(key)


def names_by_try(spans: list[ReadableSpan]) -> list[tuple[int, str]]:
    return [(attr(s, "airflow.task_instance.try_number"), s.name) for s in spans]


def test_first_attempt_traces_the_decision_the_submit_and_the_first_status(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, span_exporter: InMemorySpanExporter
) -> None:
    """A fresh try: a decision span saying fresh_submit for cycle 1, generation 0, then a submit span
    that names the token and the run Databricks created, then the status read before deferring."""
    spans = traced_run(dagbag, "dbx_none", span_exporter)
    [run] = databricks_emulator_env.emulator.runs()
    decision, submit, status = spans
    assert [
        (1, "resumable_job.resume_decision"),
        (1, "resumable_job.submit"),
        (1, "resumable_job.status"),
    ] == (names_by_try(spans))
    assert ("fresh_submit", 1, 0) == (
        attr(decision, "resumable.decision"),
        attr(decision, "resumable.cycle"),
        attr(decision, "resumable.generation"),
    )
    assert (str(run["run_id"]), 0, "FaultyDatabricksSubmitRunOperator") == (
        attr(submit, "resumable.external_id"),
        attr(submit, "resumable.generation"),
        attr(submit, "operator"),
    )
    assert attr(submit, "resumable.token").endswith("-g0")
    assert (str(run["run_id"]), "active") == (
        attr(status, "resumable.external_id"),
        attr(status, "resumable.job_phase"),
    )
    assert ("etl", "resumable_triggers.databricks_submit_run") == (
        attr(decision, "airflow.task_id"),
        attr(decision, "resumable.external_id_key"),
    )


def test_retry_after_a_crash_traces_a_reconnect_whose_status_read_nests_in_the_decision(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, span_exporter: InMemorySpanExporter
) -> None:
    """Try 1 dies in its status read (the span ends in ERROR, naming the exception); try 2's decision
    span says reconnect, names the run and its prior status, and holds the status read it needed."""
    spans = traced_run(dagbag, "dbx_crash_after_persist", span_exporter)
    [run] = databricks_emulator_env.emulator.runs()
    failed_status = spans[2]
    decision, inspect = spans[3], spans[4]
    assert (1, "resumable_job.status") == (
        attr(failed_status, "airflow.task_instance.try_number"),
        failed_status.name,
    )
    assert StatusCode.ERROR == failed_status.status.status_code
    assert ["fault_injection.SimulatedCrash"] == [
        (e.attributes or {}).get("exception.type") for e in failed_status.events
    ]
    assert ("reconnect", str(run["run_id"]), 2) == (
        attr(decision, "resumable.decision"),
        attr(decision, "resumable.external_id"),
        attr(decision, "airflow.task_instance.try_number"),
    )
    assert attr(decision, "resumable.prior_status") in {"PENDING", "QUEUED", "RUNNING"}
    assert decision.context is not None
    assert inspect.parent is not None
    assert ("resumable_job.status", decision.context.span_id) == (inspect.name, inspect.parent.span_id)
    assert [] == [
        s
        for s in spans
        if s.name == "resumable_job.submit" and attr(s, "airflow.task_instance.try_number") == 2
    ]


def test_retry_of_a_failed_run_traces_a_terminal_resubmit_of_the_next_generation(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, span_exporter: InMemorySpanExporter
) -> None:
    """The first run fails on Databricks: the retry's decision is terminal_resubmit with generation 1,
    and its submit span names the new run and a generation-1 token."""
    spans = traced_run(dagbag, "dbx_first_run_fails", span_exporter)
    first, second = sorted(databricks_emulator_env.emulator.runs(), key=lambda r: r["run_id"])
    decisions = [s for s in spans if s.name == "resumable_job.resume_decision"]
    submits = [s for s in spans if s.name == "resumable_job.submit"]
    assert [("fresh_submit", 0), ("terminal_resubmit", 1)] == [
        (attr(s, "resumable.decision"), attr(s, "resumable.generation")) for s in decisions
    ]
    assert "TERMINATED/FAILED" == attr(decisions[1], "resumable.prior_status")
    assert [(str(first["run_id"]), 0), (str(second["run_id"]), 1)] == [
        (attr(s, "resumable.external_id"), attr(s, "resumable.generation")) for s in submits
    ]
    assert attr(submits[1], "resumable.token").endswith("-g1")


def test_retry_that_finds_the_run_succeeded_traces_the_event_read_and_no_submit(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, span_exporter: InMemorySpanExporter
) -> None:
    """Killed in the completion method, the retry decides already_succeeded and reads the run's event
    (its details) in an event span; it submits nothing."""
    spans = traced_run(dagbag, "dbx_crash_in_completion", span_exporter)
    try_two = [s for s in spans if attr(s, "airflow.task_instance.try_number") == 2]
    assert ["resumable_job.resume_decision", "resumable_job.status", "resumable_job.event"] == [
        s.name for s in try_two
    ]
    assert "already_succeeded" == attr(try_two[0], "resumable.decision")
    assert ("TERMINATED/SUCCESS", "succeeded") == (
        attr(try_two[2], "resumable.job_state"),
        attr(try_two[2], "resumable.event_outcome"),
    )


def test_sigterm_while_holding_the_run_is_traced_as_a_checkpoint_without_a_cancel(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, span_exporter: InMemorySpanExporter
) -> None:
    """A worker shutdown before deferring: a SIGTERM span with the checkpoint verdict and the state the
    API server reported, and no cancel span."""
    spans = traced_run(dagbag, "dbx_sigterm_before_defer", span_exporter)
    [sigterm] = [s for s in spans if s.name == "resumable_job.sigterm"]
    assert ("checkpoint", "running") == (
        attr(sigterm, "resumable.sigterm_verdict"),
        attr(sigterm, "resumable.task_state"),
    )
    assert [] == [s for s in spans if s.name == "resumable_job.cancel"]


def test_execution_timeout_in_the_worker_traces_the_cancel_of_its_run(
    dagbag: Any, databricks_emulator_env: EmulatorHandle, span_exporter: InMemorySpanExporter
) -> None:
    """With deferrable=False the worker polls until execution_timeout; the cancel that follows has a
    span of its own, naming the run, that ends without error."""
    spans = traced_run(dagbag, "dbx_execution_timeout", span_exporter)
    [run] = databricks_emulator_env.emulator.runs()
    [cancel] = [s for s in spans if s.name == "resumable_job.cancel"]
    assert (str(run["run_id"]), StatusCode.UNSET) == (
        attr(cancel, "resumable.external_id"),
        cancel.status.status_code,
    )
    assert "cancel" == attr(cancel, "resumable.call")

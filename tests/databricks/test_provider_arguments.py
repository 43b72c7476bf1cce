"""The provider arguments that add to a request, through ``dag.test()`` against the emulator, read on
the wire (a recording proxy sits between the operators and the emulator).

cancel_previous_runs is asserted from the workspace's side too: which runs ended CANCELED.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_operators import run_dag
from wire_recorder import WireRecorder, recording_proxy

from resumable_triggers.testing import EmulatorFactory, EmulatorHandle

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def emulator(databricks_emulator_factory: EmulatorFactory) -> EmulatorHandle:
    # Cancelled runs end CANCELED within 0.1 s, well before the task's own run has finished.
    return databricks_emulator_factory(run_seconds=1.0, cancel_seconds=0.1)


@pytest.fixture
def wire(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[WireRecorder]:
    """The Airflow connection (and DATABRICKS_HOST) point at a recording proxy of the emulator."""
    with recording_proxy(emulator.url) as recorder:
        proxied = EmulatorHandle(recorder.url, emulator.token, emulator.emulator)
        for name, value in proxied.environment().items():
            monkeypatch.setenv(name, value)
        yield recorder


def create_job(emulator: EmulatorHandle, name: str, *, seconds: float) -> int:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import NotebookTask, Task

    workspace = WorkspaceClient(host=emulator.url, token=emulator.token)
    task = Task(
        task_key="main",
        notebook_task=NotebookTask(
            notebook_path="/jobs/x", base_parameters={"emulator.duration_seconds": str(seconds)}
        ),
    )
    job_id = workspace.jobs.create(name=name, tasks=[task]).job_id
    assert job_id is not None
    return job_id


def dag_state(dagbag: Any, dag_id: str) -> str:
    return str(dagbag.get_dag(dag_id).test().state)


def without_token(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "idempotency_token"}


@pytest.mark.parametrize("fault", ["none", "crash_after_submit", "crash_after_persist"])
def test_cancel_previous_runs_cancels_other_runs_but_never_the_run_a_retry_adopts(
    fault: str, dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """A run of the job that was already active ends CANCELED: the fresh submit sends runs/cancel-all
    for the job first. A retry that resubmits its stored token (crash after submit) or reconnects
    (crash after persisting) sends no second cancel-all, so the run it adopts succeeds."""
    from databricks.sdk import WorkspaceClient

    job_id = create_job(emulator, "long-job", seconds=60)
    earlier = WorkspaceClient(host=emulator.url, token=emulator.token).jobs.run_now(job_id=job_id).run_id
    state, store, _ = run_dag(dagbag, f"dbxp_cancel_previous_{fault}")
    ours = store["resumable_triggers.databricks_run_now"]["external_id"]
    runs = {run["run_id"]: run for run in emulator.emulator.runs()}
    endpoints = [sent.endpoint for sent in wire.sent() if sent.method == "POST"]

    assert ("success", {earlier, ours}) == (state, set(runs))
    assert ("CANCELED", "SUCCESS") == (
        runs[earlier]["state"].get("result_state"),
        runs[ours]["state"]["result_state"],
    )
    assert [{"job_id": job_id}] == wire.bodies("jobs/runs/cancel-all")
    assert "jobs/runs/cancel-all" == endpoints[0], "previous runs are cancelled before the new one starts"


def test_run_now_sends_what_the_provider_sends(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """Beside the provider's operator with the same arguments, the run-now request is the same but
    for our idempotency token: params (not None) forwarded as job_parameters, the templated
    performance_target, and (the OpenLineage provider being absent) no OPENLINEAGE_CONTEXT."""
    job_id = create_job(emulator, "short-job", seconds=0.5)
    state = dag_state(dagbag, "dbxp_run_now_like_provider")
    theirs, ours = wire.bodies("jobs/run-now")

    assert "success" == state
    assert {
        "job_id": job_id,
        "job_parameters": {"region": "eu", "batch": 3, "tier": "STANDARD"},
        "performance_target": "STANDARD",
    } == theirs
    assert theirs == without_token(ours)
    assert ours["idempotency_token"]


def test_forward_dag_params_false_sends_no_job_parameters(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """With forward_dag_params=False the task's params stay in Airflow."""
    job_id = create_job(emulator, "short-job", seconds=0.5)
    state = dag_state(dagbag, "dbxp_run_now_without_forwarding")
    [body] = wire.bodies("jobs/run-now")
    assert ("success", {"job_id": job_id}) == (state, without_token(body))


def test_submit_sends_what_the_provider_sends(
    dagbag: Any, emulator: EmulatorHandle, wire: WireRecorder
) -> None:
    """Beside the provider's operator with the same arguments, the runs/submit request is the same but
    for our idempotency token: params fill the empty dict-shaped task slot (numbers as strings, as the
    provider's normalisation leaves them), a filled slot and a list-shaped task are left alone, and
    the OpenLineage flags (provider absent) leave the cluster's spark_conf untouched."""
    state = dag_state(dagbag, "dbxp_submit_like_provider")
    theirs, ours = wire.bodies("jobs/runs/submit")

    assert "success" == state
    assert theirs == without_token(ours)
    assert ("STANDARD", {"region": "eu", "batch": "3", "tier": "STANDARD"}) == (
        ours["performance_target"],
        ours["tasks"][0]["notebook_task"]["base_parameters"],
    )
    assert {"emulator.duration_seconds": "0.5"} == ours["tasks"][1]["notebook_task"]["base_parameters"]
    assert "spark_conf" not in ours["tasks"][1]["new_cluster"]
    assert {"python_file": "/c.py"} == ours["tasks"][2]["spark_python_task"]

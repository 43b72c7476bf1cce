"""The API server's listener for a user's mark failed / mark success, against the emulator over HTTP.

The hooks are called as Airflow's API server calls them (``previous_state`` None, a task instance
whose ``trigger_id`` names a Trigger row in Airflow's database); the workspace's request counters say
whether the run was cancelled.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from resumable_triggers.databricks import DatabricksRunTrigger
from resumable_triggers.databricks.client import DatabricksClient, SdkHeaderProvider
from resumable_triggers.resume._listener import UserStateListener, trigger_of
from resumable_triggers.testing import EmulatorHandle

pytestmark = pytest.mark.timeout(60)


def submit(handle: EmulatorHandle) -> int:
    """A one-task run that would go on for a minute."""
    from databricks.sdk.config import Config

    from resumable_triggers.resume._bridge import run_blocking

    async def go() -> int:
        headers = SdkHeaderProvider(lambda: Config(host=handle.url, token=handle.token), identity="test")
        spec = {
            "run_name": "t",
            "tasks": [
                {
                    "task_key": "main",
                    "notebook_task": {
                        "notebook_path": "/x",
                        "base_parameters": {"emulator.duration_seconds": "60"},
                    },
                }
            ],
        }
        async with DatabricksClient(handle.url, headers) as client:
            return await client.submit_run(spec, idempotency_token=None)

    return run_blocking(go(), waiting_for=lambda: "the emulator")


def deferred_on(classpath: str, kwargs: dict[str, Any]) -> SimpleNamespace:
    """A task instance as the API server hands it to the hook: deferred on a stored Trigger row."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        row = Trigger(classpath=classpath, kwargs=kwargs)
        session.add(row)
        session.flush()
        trigger_id = row.id
    return SimpleNamespace(trigger_id=trigger_id, dag_id="dag", task_id="etl", run_id="manual__1")


def deferred_on_run(run_id: int, **kwargs: Any) -> SimpleNamespace:
    classpath, stored = DatabricksRunTrigger(external_id=str(run_id), **kwargs).serialize()
    return deferred_on(classpath, stored)


def cancels(handle: EmulatorHandle) -> int:
    return handle.emulator.counters().requests_by_endpoint.get("runs/cancel", 0)


@pytest.mark.usefixtures("airflow_db")
def test_user_marks_a_deferred_task_failed_cancels_its_run_from_the_api_server(
    databricks_emulator_env: EmulatorHandle,
) -> None:
    """No triggerer needs to run the trigger: the hook rebuilds it from its row and cancels the run."""
    run_id = submit(databricks_emulator_env)
    ti = deferred_on_run(run_id)
    UserStateListener().on_task_instance_failed(previous_state=None, task_instance=ti, error="set by a user")
    state = databricks_emulator_env.emulator.get_run(run_id)["state"]
    assert (1, True) == (cancels(databricks_emulator_env), state["life_cycle_state"] != "RUNNING")


@pytest.mark.usefixtures("airflow_db")
def test_user_marks_a_deferred_task_success_cancels_its_run_once_however_often_it_is_decided(
    databricks_emulator_env: EmulatorHandle,
) -> None:
    """Mark success cancels too (as ``on_kill`` does); a second decision on the same act (the trigger's
    own ``on_kill``, when a triggerer runs it) finds the run being cancelled and sends nothing."""
    run_id = submit(databricks_emulator_env)
    ti = deferred_on_run(run_id)
    listener = UserStateListener()
    listener.on_task_instance_success(previous_state=None, task_instance=ti)
    listener.on_task_instance_success(previous_state=None, task_instance=ti)
    assert 1 == cancels(databricks_emulator_env)


@pytest.mark.usefixtures("airflow_db")
def test_hooks_fired_by_a_task_runner_or_for_an_undeferred_task_or_cancel_on_kill_false_cancel_nothing(
    databricks_emulator_env: EmulatorHandle,
) -> None:
    """A task runner's own hook (previous_state set), a task with no trigger, and a trigger whose task
    asked to keep its job (``cancel_on_kill=False``) all leave the run going."""
    run_id = submit(databricks_emulator_env)
    listener = UserStateListener()
    not_deferred = SimpleNamespace(trigger_id=None, dag_id="d", task_id="t", run_id="r")
    by_a_task_runner = deferred_on_run(run_id)
    listener.on_task_instance_failed(previous_state="running", task_instance=by_a_task_runner, error="x")
    listener.on_task_instance_success(previous_state=None, task_instance=not_deferred)
    listener.on_task_instance_failed(
        previous_state=None, task_instance=deferred_on_run(run_id, cancel_on_kill=False), error="x"
    )
    state = databricks_emulator_env.emulator.get_run(run_id)["state"]
    assert (0, False) == (cancels(databricks_emulator_env), "result_state" in state)


@pytest.mark.usefixtures("airflow_db")
def test_someone_elses_trigger_is_left_to_its_owner(databricks_emulator_env: EmulatorHandle) -> None:
    """The provider's trigger (or any class that is not a resumable trigger, or none that imports) is
    not ours to decide for: nothing is rebuilt, nothing raised, nothing cancelled."""
    provider = "airflow.providers.databricks.triggers.databricks.DatabricksExecutionTrigger"
    assert (None, None) == (trigger_of(provider, {}), trigger_of("no.such.module.Trigger", {}))
    ti = deferred_on(provider, {"run_id": 1, "databricks_conn_id": "databricks_default"})
    UserStateListener().on_task_instance_failed(previous_state=None, task_instance=ti, error="x")
    assert 0 == cancels(databricks_emulator_env)


@pytest.mark.usefixtures("airflow_db")
def test_a_workspace_that_does_not_answer_holds_the_users_click_only_for_the_on_kill_budget(
    databricks_emulator_env: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """The hook runs inside the user's PATCH: a workspace that holds its answer must not hold the
    click for the client's minutes of retries. The decision gives up after its budget (here 0.5 s,
    by default ``[triggerer] on_kill_timeout``), cancels nothing it could not judge, and names the job
    in an error. Without the budget the hook waited for the held answer, then cancelled."""
    handle = databricks_emulator_env
    run_id = submit(handle)
    ti = deferred_on_run(run_id)
    handle.emulator.inject_fault(endpoint="runs/get", kind="hold", count=1)
    try:
        UserStateListener(decision_seconds=0.5).on_task_instance_failed(
            previous_state=None, task_instance=ti, error="set by a user"
        )
        state = handle.emulator.get_run(run_id)["state"]["life_cycle_state"]
        assert (0, True) == (cancels(handle), state in ("PENDING", "RUNNING"))
    finally:
        handle.emulator.release_held()
    assert f"gave up deciding on job {run_id}" in caplog.text

"""databricks-sdk's WorkspaceClient, unmodified, against the emulator (PAT and OAuth M2M)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import ResourceDoesNotExist
from databricks.sdk.service import jobs

from resumable_triggers.testing import Emulator, EmulatorFactory, EmulatorHandle, ManualClock


def _task(key: str = "main", **declared: str) -> jobs.SubmitTask:
    parameters = {f"emulator.{k}": v for k, v in declared.items()}
    return jobs.SubmitTask(
        task_key=key, notebook_task=jobs.NotebookTask(notebook_path="/Shared/x", base_parameters=parameters)
    )


@pytest.fixture(params=["pat", "oauth-m2m"])
def client(request: pytest.FixtureRequest, emulator: Emulator, served: EmulatorHandle) -> WorkspaceClient:
    """A WorkspaceClient authenticated with the PAT, or with OAuth M2M client credentials."""
    if request.param == "pat":
        workspace = WorkspaceClient(host=served.url, token=emulator.token)
    else:
        workspace = WorkspaceClient(
            host=served.url, client_id="emulator-client-id", client_secret="emulator-client-secret"
        )
    assert request.param == workspace.config.auth_type
    return workspace


def test_sdk_submit_and_wait_reaches_success(client: WorkspaceClient, clock: ManualClock) -> None:
    """submit(...).result() returns the TERMINATED/SUCCESS run once the clock has passed its end."""
    waiter = client.jobs.submit(run_name="ok", tasks=[_task()])
    clock.advance(10)
    run = waiter.result(timeout=timedelta(seconds=30))
    assert (jobs.RunLifeCycleState.TERMINATED, jobs.RunResultState.SUCCESS) == (
        run.state.life_cycle_state,
        run.state.result_state,
    )


@pytest.mark.parametrize(
    ("declared", "life_cycle", "result"),
    [
        ("FAILED", jobs.RunLifeCycleState.TERMINATED, jobs.RunResultState.FAILED),
        ("TIMEDOUT", jobs.RunLifeCycleState.TERMINATED, jobs.RunResultState.TIMEDOUT),
        ("INTERNAL_ERROR", jobs.RunLifeCycleState.INTERNAL_ERROR, jobs.RunResultState.FAILED),
    ],
)
def test_sdk_reads_failed_timedout_and_internal_error_outcomes(
    client: WorkspaceClient,
    clock: ManualClock,
    declared: str,
    life_cycle: jobs.RunLifeCycleState,
    result: jobs.RunResultState,
) -> None:
    """get_run parses each non-success terminal state, and get_run_output returns the task's error."""
    run_id = client.jobs.submit(tasks=[_task(result_state=declared, error="boom")]).response.run_id
    clock.advance(10)
    run = client.jobs.get_run(run_id)
    output = client.jobs.get_run_output(run.tasks[0].run_id)
    assert (life_cycle, result, "boom") == (run.state.life_cycle_state, run.state.result_state, output.error)


def test_sdk_cancel_run_ends_canceled_by_user(client: WorkspaceClient, clock: ManualClock) -> None:
    """cancel_run on a running run: TERMINATING at once, then CANCELED with USER_CANCELED."""
    run_id = client.jobs.submit(tasks=[_task()]).response.run_id
    clock.advance(2)
    client.jobs.cancel_run(run_id)
    terminating = client.jobs.get_run(run_id).state.life_cycle_state
    clock.advance(1)
    run = client.jobs.get_run(run_id)
    assert (
        jobs.RunLifeCycleState.TERMINATING,
        jobs.RunResultState.CANCELED,
        jobs.TerminationCodeCode.USER_CANCELED,
    ) == (terminating, run.state.result_state, run.status.termination_details.code)


def test_sdk_list_runs_follows_every_page_newest_first(client: WorkspaceClient, clock: ManualClock) -> None:
    """list_runs(limit=25) iterates all 30 runs across pages, newest first."""
    ids = []
    for _ in range(30):
        ids.append(client.jobs.submit(tasks=[_task()]).response.run_id)
        clock.advance(0.01)
    assert ids[::-1] == [r.run_id for r in client.jobs.list_runs(limit=25)]


def test_sdk_unknown_run_raises_resource_does_not_exist(client: WorkspaceClient) -> None:
    """get_run of an unknown id raises the SDK's ResourceDoesNotExist with Databricks' message."""
    with pytest.raises(ResourceDoesNotExist, match=r"Run 424242 does not exist\."):
        client.jobs.get_run(424242)


def test_sdk_survives_429_with_retry_after(client: WorkspaceClient, emulator: Emulator) -> None:
    """A 429 with Retry-After on runs/get is retried by the SDK and the call succeeds."""
    run_id = client.jobs.submit(tasks=[_task()]).response.run_id
    emulator.inject_fault(endpoint="runs/get", kind="http_error", status=429, retry_after_seconds=1)
    run = client.jobs.get_run(run_id)
    counters = emulator.counters()
    assert (run_id, 2, 1) == (
        run.run_id,
        counters.requests_by_endpoint["runs/get"],
        counters.responses_by_status[429],
    )


def test_sdk_reused_idempotency_token_returns_the_same_run_after_it_ended(
    client: WorkspaceClient, emulator: Emulator, clock: ManualClock
) -> None:
    """A second submit with the same token after the run failed returns the failed run; one run exists."""
    first = client.jobs.submit(tasks=[_task(result_state="FAILED")], idempotency_token="once").response.run_id
    clock.advance(10)
    second = client.jobs.submit(tasks=[_task()], idempotency_token="once").response.run_id
    assert (first, jobs.RunResultState.FAILED, 1) == (
        second,
        client.jobs.get_run(second).state.result_state,
        emulator.counters().runs_submitted,
    )


def test_sdk_oauth_fetches_a_new_token_when_the_old_one_expires(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """With 30 s tokens (inside the SDK's 40 s refresh margin) every call is made with a fresh token."""
    served = databricks_emulator_factory(oauth_token_lifetime_seconds=30)
    emulator = served.emulator
    client = WorkspaceClient(
        host=served.url, client_id="emulator-client-id", client_secret="emulator-client-secret"
    )
    list(client.jobs.list_runs())
    before = emulator.counters().requests_by_endpoint["oidc/v1/token"]
    list(client.jobs.list_runs())
    after = emulator.counters().requests_by_endpoint["oidc/v1/token"]
    assert (1, 200) == (after - before, emulator.request_log[-1].status)


def test_sdk_with_a_wrong_client_secret_cannot_authenticate(served: EmulatorHandle) -> None:
    """OAuth M2M with a wrong secret fails at the token endpoint, naming invalid_client."""
    client = WorkspaceClient(host=served.url, client_id="emulator-client-id", client_secret="wrong")
    with pytest.raises(ValueError, match="invalid_client"):
        list(client.jobs.list_runs())


def _job_task(key: str, **declared: str) -> jobs.Task:
    parameters = {f"emulator.{k}": v for k, v in declared.items()}
    return jobs.Task(
        task_key=key, notebook_task=jobs.NotebookTask(notebook_path="/Shared/x", base_parameters=parameters)
    )


def test_sdk_update_job_merges_its_tasks_and_run_now_runs_the_update(
    client: WorkspaceClient, clock: ManualClock
) -> None:
    """jobs.update replaces task "a" (now FAILED) and removes task "b" (fields_to_remove="tasks/b");
    get shows the merged tasks, and the next run_now runs them."""
    job_id = client.jobs.create(name="etl", tasks=[_job_task("a"), _job_task("b"), _job_task("c")]).job_id
    client.jobs.update(
        job_id,
        new_settings=jobs.JobSettings(name="etl-v2", tasks=[_job_task("a", result_state="FAILED")]),
        fields_to_remove=["tasks/b"],
    )
    settings = client.jobs.get(job_id).settings
    run_id = client.jobs.run_now(job_id).response.run_id
    clock.advance(10)
    run = client.jobs.get_run(run_id)
    assert ("etl-v2", ["a", "c"], jobs.RunResultState.FAILED, {"a", "c"}) == (
        settings.name,
        [t.task_key for t in settings.tasks],
        run.state.result_state,
        {t.task_key for t in run.tasks},
    )


def test_sdk_submit_with_retry_fields_reads_each_attempt_number(
    client: WorkspaceClient, clock: ManualClock
) -> None:
    """A SubmitTask with max_retries/min_retry_interval_millis/retry_on_timeout that fails once: the
    waiter returns SUCCESS and get_run().tasks lists attempts 0 (FAILED) and 1 (SUCCESS)."""
    task = _task(fail_attempts="1")
    task.max_retries, task.min_retry_interval_millis, task.retry_on_timeout = 2, 1000, True
    waiter = client.jobs.submit(run_name="retried", tasks=[task])
    clock.advance(21)
    run = waiter.result(timeout=timedelta(seconds=30))
    assert (
        jobs.RunResultState.SUCCESS,
        [(0, jobs.RunResultState.FAILED), (1, jobs.RunResultState.SUCCESS)],
    ) == (run.state.result_state, [(t.attempt_number, t.state.result_state) for t in run.tasks])


def test_sdk_fail_attempts_then_repair_run_with_latest_repair_id_succeeds(
    client: WorkspaceClient, clock: ManualClock
) -> None:
    """emulator.fail_attempts=2: the run and its first repair fail; the second repair, naming the
    first as latest_repair_id, ends SUCCESS through repair_run(...).result(); the history has three."""
    run_id = client.jobs.submit(tasks=[_task(fail_attempts="2")]).response.run_id
    clock.advance(10)
    first = client.jobs.repair_run(run_id, rerun_all_failed_tasks=True)
    clock.advance(10)
    failed_again = client.jobs.get_run(run_id).state.result_state
    second = client.jobs.repair_run(
        run_id, rerun_all_failed_tasks=True, latest_repair_id=first.response.repair_id
    )
    clock.advance(10)
    run = second.result(timeout=timedelta(seconds=30))
    history = client.jobs.get_run(run_id, include_history=True).repair_history
    assert (jobs.RunResultState.FAILED, jobs.RunResultState.SUCCESS, 2) == (
        failed_again,
        run.state.result_state,
        run.tasks[0].attempt_number,
    )
    assert [None, first.response.repair_id, second.response.repair_id] == [h.id for h in history]

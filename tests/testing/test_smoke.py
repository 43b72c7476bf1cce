"""A first end-to-end check of the emulator through databricks-sdk."""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs

from resumable_triggers.testing import Emulator, emulator_in_thread


def test_sdk_submit_and_wait_reaches_success() -> None:
    """A run submitted with databricks-sdk terminates with SUCCESS and is counted once."""
    emulator = Emulator(run_seconds=0.2)
    with emulator_in_thread(emulator) as server:
        client = WorkspaceClient(host=server.url, token=emulator.token)
        run = client.jobs.submit(
            run_name="smoke",
            tasks=[jobs.SubmitTask(task_key="a", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
        ).result()
    assert jobs.RunResultState.SUCCESS == run.state.result_state
    assert 1 == emulator.counters().runs_submitted

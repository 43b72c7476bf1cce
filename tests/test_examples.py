"""The example DAGs import cleanly and run to success through real Airflow task execution."""

from __future__ import annotations

from typing import Any

import pytest

from resumable_triggers.testing import EmulatorHandle

pytestmark = pytest.mark.timeout(120)

EXAMPLES = ["example_databricks", "example_detached_command"]


def test_examples_are_in_the_dagbag_without_import_errors(dagbag: Any) -> None:
    """Every example DAG parses (the dagbag fixture itself fails on any import error)."""
    assert set(EXAMPLES) <= set(dagbag.dag_ids)


def test_example_databricks_runs_every_task_once(
    dagbag: Any, databricks_emulator_env: EmulatorHandle
) -> None:
    """The Databricks example succeeds: three submitted runs (the notebook task's among them) and one
    run-now of the report job, whose publish task fails once and is repaired on the same run."""
    from databricks.sdk import WorkspaceClient

    from resumable_triggers._demo._story import REPORT_JOB_SETTINGS

    workspace = WorkspaceClient(host=databricks_emulator_env.url, token=databricks_emulator_env.token)
    workspace.api_client.do("POST", "/api/2.2/jobs/create", body=REPORT_JOB_SETTINGS)
    dag_run = dagbag.get_dag("example_databricks").test()
    runs = databricks_emulator_env.emulator.runs()
    assert ("success", 4) == (str(dag_run.state), len(runs))
    assert ["JOB_RUN", "SUBMIT_RUN", "SUBMIT_RUN", "SUBMIT_RUN"] == sorted(run["run_type"] for run in runs)
    assert {"SUCCESS"} == {run["state"]["result_state"] for run in runs}
    [report] = [run for run in runs if run["run_type"] == "JOB_RUN"]
    assert ["ORIGINAL", "REPAIR"] == [entry["type"] for entry in report["repair_history"]]


def test_example_detached_command_runs(dagbag: Any) -> None:
    """The non-Databricks example succeeds through the same resume machinery."""
    assert "success" == str(dagbag.get_dag("example_detached_command").test().state)

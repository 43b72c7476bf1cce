"""One real Airflow deployment shared by the end-to-end tests of a session.

Starting Airflow costs ~11 s, so the deployment is session-scoped. Each test gets it through the
``airflow`` fixture, which first restarts any component an earlier test left dead and afterwards
fails the DAG runs the test left active, so that leftovers hold no worker slot. When a test fails, the
tail of every component's log is added to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from resumable_triggers.testing.deployment import AirflowDeployment

DAGS = Path(__file__).resolve().parent / "dags"


@pytest.fixture(scope="session")
def airflow_deployment() -> Iterator[AirflowDeployment]:
    connections = {"e2e_smoke": {"conn_type": "http", "host": "connection-from-the-harness.invalid"}}
    with AirflowDeployment(dags_folder=DAGS, connections=connections) as deployment:
        yield deployment
    # stop() raises if any process survived SIGKILL; this also catches one it never saw die.
    assert [] == deployment.processes()


@pytest.fixture
def airflow(airflow_deployment: AirflowDeployment) -> Iterator[AirflowDeployment]:
    airflow_deployment.ensure_running()
    yield airflow_deployment
    airflow_deployment.ensure_running()  # the test may have left a component dead
    airflow_deployment.fail_active_dag_runs()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    deployment = getattr(item, "funcargs", {}).get("airflow")
    if isinstance(report, pytest.TestReport) and report.failed and isinstance(deployment, AirflowDeployment):
        report.sections.append(("airflow component logs", deployment.log_tails(40)))
    return report

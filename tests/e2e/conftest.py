"""One real Airflow deployment and one Databricks emulator process, shared by the end-to-end tests.

Starting Airflow costs ~11 s, so the deployment is session-scoped, and so is the emulator it talks to
(``databricks_default`` points at it; it runs with a state file, so a test can restart it and keep
its runs). Each test gets the deployment through the ``airflow`` fixture, which first restarts any
component an earlier test left dead and afterwards fails the DAG runs the test left active, so that
leftovers hold no worker slot. Databricks tests use ``dbx`` (see ``e2e_testkit``), which also gives
them a fresh emulator and waits, afterwards, until nothing of theirs still runs. When a test fails,
the tail of every component's log is added to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from e2e_testkit import DatabricksE2E

from resumable_triggers.testing import EmulatorProcess, airflow_connection
from resumable_triggers.testing.airflow import AirflowDeployment

DAGS = Path(__file__).resolve().parent / "dags"


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def emulator_process(e2e_dir: Path) -> Iterator[EmulatorProcess]:
    """The Databricks emulator in its own process, with a state file so that a restart keeps runs.

    Runs last 600 s unless a DAG says otherwise: tests end runs through the control API once the
    fault under test is over."""
    with EmulatorProcess(run_seconds=600, state_file=e2e_dir / "emulator-state.json") as emulator:
        yield emulator


@pytest.fixture(scope="session")
def airflow_deployment(e2e_dir: Path, emulator_process: EmulatorProcess) -> Iterator[AirflowDeployment]:
    connections = {
        "e2e_smoke": {"conn_type": "http", "host": "connection-from-the-harness.invalid"},
        "databricks_default": airflow_connection(emulator_process.url, emulator_process.token),
    }
    gates = e2e_dir / "gates"
    gates.mkdir(exist_ok=True)
    env = {"E2E_GATES_DIR": str(gates)}
    with AirflowDeployment(dags_folder=DAGS, connections=connections, env=env) as deployment:
        yield deployment
    # stop() raises if any process survived SIGKILL; this also catches one it never saw die.
    assert [] == deployment.processes()


@pytest.fixture
def airflow(airflow_deployment: AirflowDeployment) -> Iterator[AirflowDeployment]:
    airflow_deployment.ensure_running()
    yield airflow_deployment
    airflow_deployment.ensure_running()  # the test may have left a component dead
    airflow_deployment.rest.fail_active_dag_runs()


@pytest.fixture
def dbx(
    request: pytest.FixtureRequest,
    airflow: AirflowDeployment,
    emulator_process: EmulatorProcess,
    e2e_dir: Path,
) -> Iterator[DatabricksE2E]:
    """The deployment and a fresh (reset) emulator for one Databricks test; afterwards, waits until
    none of the test's task processes, triggers or requests are left, so the next test starts clean."""
    with DatabricksE2E(airflow, emulator_process, e2e_dir / "gates", request.node.name) as e2e:
        yield e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the end-to-end tests last, so that the shared deployment (started by the first of them,
    stopped at the end of the session) does not load the machine under the unit tests; and the HA
    topology's first among them, so that its module-scoped deployment is gone before the single-node
    one starts: two Airflows at once on two cores would slow both."""

    def order(item: pytest.Item) -> tuple[bool, bool]:
        uses_ha = "ha_deployment" in getattr(item, "fixturenames", ())
        return item.get_closest_marker("e2e") is not None, not uses_ha

    items.sort(key=order)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    funcargs = getattr(item, "funcargs", {})
    deployment = funcargs.get("airflow") or funcargs.get("ha_deployment")
    if isinstance(report, pytest.TestReport) and report.failed and isinstance(deployment, AirflowDeployment):
        report.sections.append(("airflow component logs", deployment.logs.tails(40)))
        e2e = funcargs.get("dbx") or funcargs.get("ha")
        if isinstance(e2e, DatabricksE2E):
            report.sections.append(("task logs and emulator runs", e2e.diagnostics()))
    return report

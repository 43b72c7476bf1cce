"""The production topology (docs/several-triggerers.md), one deployment for the whole ``ha`` package.

PostgreSQL, two schedulers, two triggerers and one Celery worker on Redis. A stalled triggerer loses
its triggers after 10 s without a heartbeat; each triggerer may use half of a workspace's request
allowance (``[resumable_triggers] workspace_share``), as two triggerers should. Package-scoped: it
starts once for every HA module and is gone before the single-node deployment's tests load the
machine (``pytest_collection_modifyitems`` in ``tests/e2e/conftest.py`` runs this package first).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_testkit import DatabricksE2E

from resumable_triggers.testing import EmulatorProcess, airflow_connection
from resumable_triggers.testing.airflow import PRODUCTION_TOPOLOGY, AirflowDeployment

DAGS = Path(__file__).resolve().parent.parent / "dags"
WORKSPACE_SHARE = 0.5
HA_ENV = {
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__RESUMABLE_TRIGGERS__WORKSPACE_SHARE": str(WORKSPACE_SHARE),
}


@pytest.fixture(scope="package")
def ha_deployment(e2e_dir: Path, emulator_process: EmulatorProcess) -> Iterator[AirflowDeployment]:
    connections = {
        "databricks_default": airflow_connection(emulator_process.url, emulator_process.token),
        "e2e_smoke": {"conn_type": "http", "host": "connection-from-the-harness.invalid"},
    }
    gates = e2e_dir / "gates"
    gates.mkdir(exist_ok=True)
    env = {"E2E_GATES_DIR": str(gates), **HA_ENV}
    with AirflowDeployment(
        dags_folder=DAGS, connections=connections, env=env, **PRODUCTION_TOPOLOGY
    ) as deployment:
        yield deployment
    assert [] == deployment.processes()


@pytest.fixture
def ha(
    request: pytest.FixtureRequest,
    ha_deployment: AirflowDeployment,
    emulator_process: EmulatorProcess,
    e2e_dir: Path,
) -> Iterator[DatabricksE2E]:
    """``dbx`` on the HA topology: a fresh emulator, and nothing of the test left running after it."""
    ha_deployment.ensure_running()
    with DatabricksE2E(ha_deployment, emulator_process, e2e_dir / "gates", request.node.name) as e2e:
        yield e2e

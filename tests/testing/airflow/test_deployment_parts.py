"""How an `AirflowDeployment` is put together, checked before anything starts: it holds its REST
client, its faults and its logs rather than inheriting from them."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from resumable_triggers.testing.airflow import AirflowDeployment, AirflowRestClient, DeploymentError


def test_the_rest_client_is_a_part_pointed_at_the_deployments_api_server(tmp_path: Path) -> None:
    """``deployment.rest`` talks to the deployment's own API server port; the deployment is no client."""
    deployment = AirflowDeployment(dags_folder=tmp_path, home=tmp_path / "home")

    assert (f"http://127.0.0.1:{deployment.port}", False) == (
        deployment.rest.base_url,
        isinstance(deployment, AirflowRestClient),
    )


def test_striking_an_instance_of_a_deployment_that_never_started_says_so(tmp_path: Path) -> None:
    """``faults.kill`` reaches the deployment's launcher: an instance never launched is a DeploymentError
    naming it, not an AttributeError or a stub's NotImplementedError."""
    deployment = AirflowDeployment(dags_folder=tmp_path, home=tmp_path / "home")

    with pytest.raises(DeploymentError, match=r"triggerer was never started"):
        deployment.faults.kill("triggerer", signal.SIGKILL)


def test_logs_name_one_file_per_instance_under_the_home(tmp_path: Path) -> None:
    """``deployment.logs.path`` resolves an instance name (``triggerer[0]`` is ``triggerer``) to its
    log under ``<home>/component-logs``; a log not written yet has an empty tail."""
    deployment = AirflowDeployment(dags_folder=tmp_path, home=tmp_path / "home")

    assert (tmp_path / "home" / "component-logs" / "triggerer.log", "") == (
        deployment.logs.path("triggerer[0]"),
        deployment.logs.tail("triggerer"),
    )

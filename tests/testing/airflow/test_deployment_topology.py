"""Which topologies `AirflowDeployment` accepts, decided before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from resumable_triggers.testing.airflow import AirflowDeployment


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"executor": "celery"}, "executor='celery' needs database='postgres'"),
        ({"triggerers": 2}, "triggerers=2 needs database='postgres'"),
        ({"schedulers": 2}, "schedulers=2 needs database='postgres'"),
        ({"workers": 2}, "workers=2 needs executor='celery'"),
        ({"database": "mysql"}, "database='mysql'"),
        ({"database": "postgres", "executor": "celery", "workers": 0}, "at least one worker"),
    ],
)
def test_unsupported_topology_is_refused_before_start(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    """A combination Airflow cannot run raises ValueError at construction, saying what to change."""
    with pytest.raises(ValueError) as raised:
        AirflowDeployment(dags_folder=tmp_path, **kwargs)  # type: ignore[arg-type]

    assert message in str(raised.value)


def test_instances_are_named_by_index_only_when_scaled(tmp_path: Path) -> None:
    """Servers start first; a component with one instance keeps its bare name, scaled ones are
    indexed; a bare name and index 0 address the same instance."""
    deployment = AirflowDeployment(
        dags_folder=tmp_path, home=tmp_path, database="postgres", executor="celery", triggerers=2, workers=2
    )

    assert (
        "postgres",
        "redis",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer[0]",
        "triggerer[1]",
        "celery-worker[0]",
        "celery-worker[1]",
    ) == deployment.instances
    assert deployment.topology.instance("triggerer") == deployment.topology.instance("triggerer[0]")
    assert deployment.topology.instance("scheduler[0]").name == "scheduler"
    with pytest.raises(ValueError):
        deployment.topology.instance("triggerer[2]")

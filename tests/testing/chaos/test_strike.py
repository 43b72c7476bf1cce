"""The striker on a real PostgreSQL-backed deployment: a shutdown the database does not obey, and the
order in which a restart brings back what it stands on.

The 60-minute HA campaign hung here: PostgreSQL, SIGTERMed, entered its "smart" shutdown and waited for
its clients (a frozen Celery worker's connections among them) for ever, refusing every new connection;
each restart behind it then waited out its readiness timeout on a database that was not there.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from resumable_triggers.testing.airflow import AirflowDeployment
from resumable_triggers.testing.chaos._observe import Observer
from resumable_triggers.testing.chaos._plan import FaultSpec
from resumable_triggers.testing.chaos._strike import Striker
from resumable_triggers.testing.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(300)


def test_postgres_deaf_to_sigterm_is_sigkilled_and_a_restart_brings_it_back_first(tmp_path: Path) -> None:
    """With a client connected, a SIGTERMed PostgreSQL would refuse connections until that client
    leaves: after the termination grace period it is SIGKILLed, as a container runtime does, and the
    fault says so. A triggerer restarted while the database is still down (its own restart is ten
    minutes away) brings PostgreSQL back first and comes up; the database's late recovery then does
    not restart it a second time."""
    dags = tmp_path / "dags"
    dags.mkdir()
    with (
        EmulatorProcess() as emulator,
        AirflowDeployment(
            dags_folder=dags, database="postgres", components=("api-server", "triggerer")
        ) as airflow,
    ):
        striker = Striker(airflow, emulator, Observer(airflow.rest, emulator.control, []))
        holder = psycopg2.connect(airflow.database_url.replace("postgresql+psycopg2", "postgresql"))
        try:
            event, postgres_back = striker.fault(
                FaultSpec(at_seconds=0, target="postgres", kind="sigterm", duration_seconds=600)
            )
        finally:
            holder.close()
        assert (True, "postgres (still running after 15 s: SIGKILL)") == (event.ok, event.detail)
        assert "postgres" not in airflow.pids()

        _, triggerer_back = striker.fault(FaultSpec(at_seconds=0, target="triggerer", kind="sigkill"))
        assert triggerer_back is not None
        triggerer_back.undo()
        running = airflow.pids()
        assert {"postgres", "api-server", "triggerer"} <= running.keys()

        assert postgres_back is not None
        postgres_back.undo()
        assert running["postgres"] == airflow.pids()["postgres"]

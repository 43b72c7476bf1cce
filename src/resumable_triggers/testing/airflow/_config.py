"""The environment of a deployment's Airflow processes: fast, deterministic settings for tests.

All of Airflow's configuration goes in as ``AIRFLOW__SECTION__KEY`` variables, so that nothing of the
test session's own Airflow configuration leaks in, and a caller's ``env`` can override any of it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumable_triggers.testing.airflow._hostname import HOSTNAME_ENV
from resumable_triggers.testing.airflow._servers import free_port
from resumable_triggers.testing.airflow._topology import HOSTNAME_CALLABLE, Instance, Topology

# Fast, deterministic settings measured on Airflow 3.3.2 (docs/airflow-3.3-facts.md, "Running a real
# Airflow here").
_SETTINGS = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    # A restarted scheduler resets the running tasks of a dead one only when it checks for orphans,
    # by default every 300 s, and only once the dead one's heartbeat is older than the threshold.
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
    # Shrinks Airflow's "trigger fires within ~5 s of deferring" race to ~1 s.
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
}

_CELERY_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    # Two slots per worker: a task and the resumption of a deferred one can run side by side.
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    # The scheduler syncs task states with a process pool of (CPUs - 1) by default; one is plenty.
    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    # A fresh pool process per task: Airflow retitles the pool process it runs a try in
    # ("airflow supervisor: <ti id>") and Celery never titles it back, so a reused one would still
    # look like the supervisor of a try that ended long ago.
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"worker_max_tasks_per_child": 1}),
}

# Inherited variables that would change what the deployment does: the test session's own Airflow
# configuration (unit-test mode, its AIRFLOW_HOME), pytest's, and real cloud credentials.
_INHERITED_PREFIXES_DROPPED = ("AIRFLOW", "_AIRFLOW", "PYTEST_", "DATABRICKS_", "ARM_")


def secret() -> str:
    # 32 url-safe base64 bytes: valid as a Fernet key and as a JWT or session secret alike.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the deployment's processes reach each other."""

    home: Path
    dags_folder: Path
    api_port: int
    database_url: str
    broker_url: str | None  # Celery's, None with the LocalExecutor

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def build_env(
    topology: Topology,
    endpoints: Endpoints,
    connections: Mapping[str, Mapping[str, Any] | str],
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The environment every Airflow process of the deployment shares; ``extra`` applied last."""
    env = inherited_env()
    env.update(_SETTINGS)
    env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    if topology.executor == "celery":
        env.update(_CELERY_SETTINGS)
        env["AIRFLOW__CELERY__BROKER_URL"] = str(endpoints.broker_url)
        # On the metadata database, as in most production set-ups, rather than on the broker.
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{endpoints.database_url}"
    env.update(
        {
            "AIRFLOW_HOME": str(endpoints.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(endpoints.dags_folder),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": endpoints.database_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(endpoints.api_port),
            "AIRFLOW__API__BASE_URL": endpoints.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{endpoints.base_url}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # One value for all components: otherwise each generates its own, and the API server
            # rejects the tokens the scheduler hands to workers.
            "AIRFLOW__CORE__FERNET_KEY": secret(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secret(),
            "AIRFLOW__API__SECRET_KEY": secret(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for conn_id, conn in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn if isinstance(conn, str) else json.dumps(conn)
    env.update(extra)
    return env


def instance_env(instance: Instance) -> dict[str, str]:
    """What differs between instances of a component: the hostname, and the log server ports.

    Instance 0 serves logs on the deployment's ports (the API server asks there); the others get
    ports of their own, or their log servers would fail to bind next to instance 0's.
    """
    env = {HOSTNAME_ENV: instance.hostname} if instance.hostname else {}
    if instance.index > 0:
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    return env


def inherited_env() -> dict[str, str]:
    """Our environment without what would change a deployment's behaviour (see the prefixes)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES_DROPPED)}

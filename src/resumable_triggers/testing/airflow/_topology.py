"""What an `AirflowDeployment` runs: which components, how many of each, what each instance is called.

An *instance* is one process the deployment starts and restarts: ``"scheduler[1]"``, ``"postgres"``.
A component with one instance is named without an index (``"triggerer"``), as before schedulers and
triggerers could be scaled, so ``pids()["triggerer"]`` keeps working; an index is accepted anyway
(``"triggerer[0]"``), and a bare name always addresses instance 0.

Every Airflow instance gets a hostname of its own, a loopback address (``127.0.0.2``, ``127.0.0.3``...),
through ``[core] hostname_callable``: jobs in ``/api/v2/jobs`` carry no PID, only a hostname, so this
is how the deployment tells which instance registered a job. Loopback addresses need no DNS, and a
log fetch by hostname reaches instance 0's log server (it binds every address; all instances share
one log folder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from resumable_triggers.testing.airflow._hostname import hostname

AIRFLOW_COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
CELERY_WORKER = "celery-worker"
HOSTNAME_CALLABLE = f"{hostname.__module__}.{hostname.__name__}"

# component -> the job type it registers in the metadata database.
JOB_TYPES = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}

Database = Literal["sqlite", "postgres"]
Executor = Literal["local", "celery"]

_NAME = re.compile(r"^(?P<component>[a-z-]+)(?:\[(?P<index>\d+)\])?$")


@dataclass(frozen=True, slots=True)
class Instance:
    """One process of the deployment that it starts, restarts and waits for."""

    component: str  # "triggerer", "celery-worker", "postgres"...
    index: int
    name: str  # how the deployment names it: "triggerer[1]", or "triggerer" if it is the only one
    hostname: str | None  # Airflow instances only: what its jobs and task instances record

    @property
    def is_server(self) -> bool:
        return self.component in ("postgres", "redis")


@dataclass(frozen=True, slots=True)
class Topology:
    """The validated choice of database, executor and instance counts, in start order."""

    database: Database
    executor: Executor
    components: tuple[str, ...]  # the Airflow components, in AIRFLOW_COMPONENTS order
    instances: tuple[Instance, ...]  # servers first, then Airflow's, in start order

    @classmethod
    def build(
        cls,
        *,
        components: tuple[str, ...],
        database: str,
        executor: str,
        schedulers: int,
        triggerers: int,
        workers: int | None,
    ) -> Topology:
        """Check the combination; raise ValueError saying what to change if Airflow cannot run it."""
        unknown = sorted(set(components) - set(AIRFLOW_COMPONENTS))
        if unknown:
            raise ValueError(f"unknown components {unknown}; choose from {list(AIRFLOW_COMPONENTS)}")
        if "api-server" not in components:
            raise ValueError("components must include 'api-server': readiness and workers depend on it")
        if database not in ("sqlite", "postgres"):
            raise ValueError(f"database={database!r}; choose 'sqlite' or 'postgres'")
        if executor not in ("local", "celery"):
            raise ValueError(f"executor={executor!r}; choose 'local' or 'celery'")
        for what, count in (("schedulers", schedulers), ("triggerers", triggerers)):
            if count < 1:
                raise ValueError(f"{what}={count}; a deployment runs at least one")
            # SQLite has no row locks: Airflow supports one scheduler and one triggerer on it only.
            if count > 1 and database == "sqlite":
                raise ValueError(f"{what}={count} needs database='postgres': SQLite has no row locks")
        if executor == "celery" and database != "postgres":
            raise ValueError(
                "executor='celery' needs database='postgres': Celery's result backend and several "
                "writers at once do not work on SQLite"
            )
        if workers is not None and executor != "celery":
            raise ValueError(f"workers={workers} needs executor='celery'; the LocalExecutor has none")
        worker_count = (1 if workers is None else workers) if executor == "celery" else 0
        if executor == "celery" and worker_count < 1:
            raise ValueError(f"workers={workers}; the CeleryExecutor needs at least one worker")

        ordered = tuple(c for c in AIRFLOW_COMPONENTS if c in components)
        counts: dict[str, int] = {"postgres": int(database == "postgres"), "redis": int(executor == "celery")}
        for component in ordered:
            counts[component] = {"scheduler": schedulers, "triggerer": triggerers}.get(component, 1)
        counts[CELERY_WORKER] = worker_count
        instances: list[Instance] = []
        for component, count in counts.items():
            for index in range(count):
                name = component if count == 1 else f"{component}[{index}]"
                is_server = component in ("postgres", "redis")
                address = None if is_server else f"127.0.0.{2 + len(instances)}"
                instances.append(Instance(component, index, name, address))
        return cls(cast(Database, database), cast(Executor, executor), ordered, tuple(instances))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.instances)

    def instance(self, name: str) -> Instance:
        """The instance ``name`` addresses (``"triggerer"`` is ``"triggerer[0]"``); ValueError if none."""
        match = _NAME.match(name)
        if match is not None:
            index = int(match["index"] or 0)
            for instance in self.instances:
                if (instance.component, instance.index) == (match["component"], index):
                    return instance
        raise ValueError(f"{name!r} is not one of this deployment's instances: {list(self.names)}")

    def by_hostname(self, hostname: str) -> Instance | None:
        return next((i for i in self.instances if i.hostname == hostname), None)

    def command(self, instance: Instance) -> list[str]:
        """The ``airflow`` subcommand line of an Airflow instance (after ``python -m airflow``)."""
        if instance.component != CELERY_WORKER:
            return [instance.component]
        # mingle and gossip make a worker wait for, and chat with, its peers: seconds of start-up and
        # broker traffic that tests do not need. A node name of its own avoids Celery's duplicate
        # node name warning when two workers share a machine.
        node = f"worker{instance.index}@%h"
        return ["celery", "worker", "--celery-hostname", node, "--without-mingle", "--without-gossip"]

"""`AirflowDeployment`: start, restart, stop and strike a real Airflow (the design is drawn in the package
docstring, `resumable_triggers.testing.airflow`)."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from resumable_triggers.testing.airflow._config import Endpoints, build_env
from resumable_triggers.testing.airflow._errors import DeploymentError
from resumable_triggers.testing.airflow._faults import Faults
from resumable_triggers.testing.airflow._launcher import Launcher
from resumable_triggers.testing.airflow._processes import DeploymentProcess, ProcessTracker
from resumable_triggers.testing.airflow._rest import AirflowRestClient
from resumable_triggers.testing.airflow._servers import PostgresServer, RedisServer, Server, free_port
from resumable_triggers.testing.airflow._topology import AIRFLOW_COMPONENTS, Topology

COMPONENTS: tuple[str, ...] = AIRFLOW_COMPONENTS
# The production-like topology (``AirflowDeployment(**PRODUCTION_TOPOLOGY, ...)``) that the HA tests
# and the chaos campaign's ``ha`` topology run: one definition, so they prove the same thing.
PRODUCTION_TOPOLOGY: Mapping[str, Any] = MappingProxyType(
    {"database": "postgres", "executor": "celery", "schedulers": 2, "triggerers": 2, "workers": 1}
)

_T = TypeVar("_T")


class AirflowDeployment:
    """Airflow components as subprocesses on 127.0.0.1, driven over REST; a context manager.

    It holds its parts rather than being them: ``rest`` (an `AirflowRestClient`: runs, task
    instances, user actions), ``faults`` (`Faults`: kill, pause, resume, and finding what to hit) and
    ``logs`` (`ComponentLogs`: each instance's output).

    :param dags_folder: the folder the DAG processor parses.
    :param connections: connection id -> Airflow connection, as a dict (``conn_type``, ``host``,
        ``password``, ``extra``...) or as the JSON or URI string Airflow accepts, e.g. from
        ``resumable_triggers.testing.airflow_connection()``; passed as ``AIRFLOW_CONN_<ID>`` variables.
    :param env: extra environment variables for every component, applied last: they override the
        harness's settings, e.g. ``{"AIRFLOW__CORE__PARALLELISM": "8"}``.
    :param components: which Airflow components to run; ``"api-server"`` is required (readiness is
        checked through it, and workers reach the Execution API there).
    :param database: ``"sqlite"`` (default: a file in the home) or ``"postgres"``: a PostgreSQL server
        of the deployment's own (Debian's ``postgresql``; as root it runs as the ``postgres`` user).
    :param executor: ``"local"`` (default: the LocalExecutor, inside each scheduler) or ``"celery"``:
        ``workers`` ``airflow celery worker`` processes and a Redis broker of the deployment's own
        (``redis-server``); needs ``database="postgres"``. Each worker runs 2 tries at once, each in a
        fresh pool process; results go to the metadata database.
    :param schedulers: how many schedulers run side by side (more than 1 needs PostgreSQL).
    :param triggerers: how many triggerers run side by side (more than 1 needs PostgreSQL).
    :param workers: how many Celery workers (default 1 with ``executor="celery"``; an error otherwise).
    :param home: the AIRFLOW_HOME; by default a new temporary directory that ``stop()`` deletes
        unless ``keep_home`` is true.
    :param startup_timeout_seconds: how long ``start()`` and ``restart()`` wait for readiness.

    Raises ValueError for a combination Airflow cannot run (e.g. Celery on SQLite).
    """

    def __init__(
        self,
        *,
        dags_folder: Path,
        connections: Mapping[str, Mapping[str, Any] | str] | None = None,
        env: Mapping[str, str] | None = None,
        components: Collection[str] = COMPONENTS,
        database: str = "sqlite",
        executor: str = "local",
        schedulers: int = 1,
        triggerers: int = 1,
        workers: int | None = None,
        home: Path | None = None,
        keep_home: bool = False,
        startup_timeout_seconds: float = 120.0,
    ) -> None:
        self.topology = Topology.build(
            components=tuple(components),
            database=database,
            executor=executor,
            schedulers=schedulers,
            triggerers=triggerers,
            workers=workers,
        )
        if not Path(dags_folder).is_dir():
            raise ValueError(f"dags_folder {dags_folder} is not a directory")
        self.port = free_port()
        self.rest = AirflowRestClient(f"http://127.0.0.1:{self.port}")
        self.base_url = self.rest.base_url
        self.dags_folder = Path(dags_folder).resolve()
        self.components = self.topology.components
        self.keep_home = keep_home
        self.startup_timeout_seconds = startup_timeout_seconds
        self._owns_home = home is None
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="airflow-deployment-"))
        self._servers: dict[str, Server] = {}
        postgres = redis = None
        if self.topology.database == "postgres":
            postgres = self._servers.setdefault("postgres", PostgresServer())
        if self.topology.executor == "celery":
            redis = self._servers.setdefault("redis", RedisServer())
        self.database_url = (
            postgres.url if isinstance(postgres, PostgresServer) else f"sqlite:///{self.home / 'airflow.db'}"
        )
        self.broker_url = redis.url if isinstance(redis, RedisServer) else None
        endpoints = Endpoints(self.home, self.dags_folder, self.port, self.database_url, self.broker_url)
        self._tracker = ProcessTracker()
        self._launcher = Launcher(
            topology=self.topology,
            home=self.home,
            env=build_env(self.topology, endpoints, connections or {}, env or {}),
            servers=self._servers,
            tracker=self._tracker,
            rest=self.rest,
            startup_timeout_seconds=startup_timeout_seconds,
        )
        self.logs = self._launcher.logs
        self.faults = Faults(
            topology=self.topology, launcher=self._launcher, tracker=self._tracker, rest=self.rest
        )
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"<AirflowDeployment {self.base_url} home={self.home}>"

    def __enter__(self) -> AirflowDeployment:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def instances(self) -> tuple[str, ...]:
        """The name of every process the deployment runs, servers first, in start order."""
        return self.topology.names

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the servers, migrate the database, start Airflow's instances in parallel, and wait
        until all are ready (~10 s on SQLite; see the README for the production-like topology)."""
        if self._started:
            raise DeploymentError(f"{self!r} was already started; create a new deployment instead")
        self._started = True
        # Covers a forgotten stop(), and an exception that ends the interpreter outside a `with`.
        atexit.register(self.stop)
        self._tracker.start()
        try:
            self.logs.log_dir.mkdir(parents=True, exist_ok=True)
            for server in self._servers.values():
                server.prepare()
                self._launcher.launch(server.name)
            self._launcher.wait_ready(self._servers)
            if isinstance(postgres := self._servers.get("postgres"), PostgresServer):
                postgres.create_database()
            self._launcher.migrate_db()
            airflow = [i.name for i in self.topology.instances if not i.is_server]
            for name in airflow:
                self._launcher.launch(name)
            self._launcher.wait_ready(airflow)
        except BaseException:
            self.stop()
            raise

    def stop(self, *, grace_seconds: float = 5.0) -> None:
        """Stop everything the deployment started, by PID, orphans included; safe to call twice.

        Paused processes are resumed first (a stopped process acts on no signal but SIGKILL). Main
        processes get their shutdown signal (SIGTERM; PostgreSQL SIGINT) and ``grace_seconds`` to
        exit (a triggerer needs ~10 s, so it is usually killed), then every process ever seen alive
        gets SIGKILL. Raises ``DeploymentError`` if one survives that.
        """
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            self.faults.resume_everything()
            alive_mains = []
            for name, main in self._launcher.mains.items():
                if main.is_running():
                    self._tracker.send([main.popen.pid], self._launcher.stop_signal(name))
                    alive_mains.append(main.popen.pid)
            self._tracker.wait_gone(alive_mains, grace_seconds)
            survivors: list[DeploymentProcess] = []
            for _ in range(3):  # a dying parent can fork once more between a poll and its kill
                survivors = self._tracker.alive()
                if not survivors:
                    break
                self._tracker.kill_all([p.pid for p in survivors])
            for main in self._launcher.mains.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    main.popen.wait(timeout=5)
        finally:
            self._tracker.stop()
        if survivors:
            raise DeploymentError(f"processes survived SIGKILL: {survivors}; kill them by hand")
        for server in self._servers.values():
            server.cleanup()
        if self._owns_home and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def restart(
        self, component: str, *, grace_seconds: float = 15.0, env: Mapping[str, str] | None = None
    ) -> None:
        """(Re)start an instance and wait until its new incarnation is ready.

        A running main process is stopped first (resumed if paused, its shutdown signal, then SIGKILL
        after ``grace_seconds``; a triggerer needs ~10 s; PostgreSQL's is a fast shutdown). Leftovers
        of earlier incarnations that would get in the new one's way are SIGKILLed: serve-logs holding
        its port, idle workers, trigger runners, DAG parsers, PostgreSQL backends. Running tasks
        (supervisors and task processes) are left alone: what happens to them is the test's business.
        A server comes back on the same port (PostgreSQL with the same data; Redis empty).

        ``env``: extra environment variables for this incarnation only, on top of the deployment's
        (e.g. a triggerer with ``AIRFLOW_DISABLE_GREENBACK_PORTAL``); the next restart drops them.
        """
        name = self.topology.instance(component).name
        main = self._launcher.main(name)
        if main.is_running():
            self.faults.resume(name)
            self._tracker.send([main.popen.pid], self._launcher.stop_signal(name))
            if self._tracker.wait_gone([main.popen.pid], grace_seconds):
                self._tracker.kill_all([main.popen.pid])
            main.popen.wait(timeout=10)
        self.faults.resume(name)  # orphans of a paused tree are not frozen in place: they are killed below
        stale = [p.pid for p in self._tracker.alive(name) if p.role not in ("supervisor", "task")]
        left = self._tracker.kill_all(stale)
        if left:
            raise DeploymentError(f"leftovers of {name} survived SIGKILL: {left}")
        self._launcher.launch(name, env)
        self._launcher.wait_ready([name])

    def ensure_running(self) -> list[str]:
        """Restart every instance whose main process died; return their names."""
        dead = [name for name, m in self._launcher.mains.items() if not m.is_running()]
        for name in dead:
            self.restart(name)
        return dead

    # -- processes ----------------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Main process id of every instance that is running now, by instance name."""
        return {name: m.popen.pid for name, m in self._launcher.mains.items() if m.is_running()}

    def processes(self, component: str | None = None) -> list[DeploymentProcess]:
        """Every live process the deployment started (orphans included), optionally of one instance."""
        return self._tracker.alive(None if component is None else self.topology.instance(component).name)

    def wait_for(self, what: str, probe: Callable[[], _T | None], *, timeout_seconds: float = 60.0) -> _T:
        """Poll ``probe`` until it returns something other than None (`AirflowRestClient.wait_for`:
        REST outages count as "not yet"), e.g. a process condition that a REST call checks too."""
        return self.rest.wait_for(what, probe, timeout_seconds=timeout_seconds)

"""`AirflowDeployment`: start, restart, stop and strike a real Airflow (the design is drawn in the package
docstring, `resumable_triggers.testing.airflow`)."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from resumable_triggers.testing.airflow._config import Endpoints, build_env, inherited_env, instance_env
from resumable_triggers.testing.airflow._errors import (
    AirflowApiError,
    ComponentExitedError,
    DeploymentError,
    WaitTimeoutError,
)
from resumable_triggers.testing.airflow._faults import FaultsMixin
from resumable_triggers.testing.airflow._processes import DeploymentProcess, ProcessTracker
from resumable_triggers.testing.airflow._servers import PostgresServer, RedisServer, Server, free_port
from resumable_triggers.testing.airflow._topology import AIRFLOW_COMPONENTS, JOB_TYPES, Instance, Topology

COMPONENTS: tuple[str, ...] = AIRFLOW_COMPONENTS


@dataclass(slots=True)
class _Main:
    popen: subprocess.Popen[bytes]
    launched_at: dt.datetime
    log_offset: int  # where this incarnation's output starts in the instance's log


class AirflowDeployment(FaultsMixin):
    """Airflow components as subprocesses on 127.0.0.1, driven over REST; a context manager.

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
        super().__init__(f"http://127.0.0.1:{self.port}")
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
        self._env = build_env(self.topology, endpoints, connections or {}, env or {})
        self._mains: dict[str, _Main] = {}
        self._tracker = ProcessTracker()
        self._paused: dict[str, set[int]] = {}
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
            self.log_dir.mkdir(parents=True, exist_ok=True)
            for server in self._servers.values():
                server.prepare()
                self._launch(server.name)
            self._wait_ready(self._servers)
            if isinstance(postgres := self._servers.get("postgres"), PostgresServer):
                postgres.create_database()
            self._migrate_db()
            airflow = [i.name for i in self.topology.instances if not i.is_server]
            for name in airflow:
                self._launch(name)
            self._wait_ready(airflow)
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
            self._tracker.send([p.pid for p in self._tracker.alive()], signal.SIGCONT)
            self._paused.clear()
            alive_mains = []
            for name, main in self._mains.items():
                if main.popen.poll() is None:
                    self._tracker.send([main.popen.pid], self._stop_signal(name))
                    alive_mains.append(main.popen.pid)
            self._tracker.wait_gone(alive_mains, grace_seconds)
            survivors: list[DeploymentProcess] = []
            for _ in range(3):  # a dying parent can fork once more between a poll and its kill
                survivors = self._tracker.alive()
                if not survivors:
                    break
                self._tracker.kill_all([p.pid for p in survivors])
            for main in self._mains.values():
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
        main = self._main(name)
        if main.popen.poll() is None:
            self.resume(name)
            self._tracker.send([main.popen.pid], self._stop_signal(name))
            if self._tracker.wait_gone([main.popen.pid], grace_seconds):
                self._tracker.kill_all([main.popen.pid])
            main.popen.wait(timeout=10)
        self.resume(name)  # orphans of a paused tree are not frozen in place: they are killed below
        stale = [p.pid for p in self._tracker.alive(name) if p.role not in ("supervisor", "task")]
        left = self._tracker.kill_all(stale)
        if left:
            raise DeploymentError(f"leftovers of {name} survived SIGKILL: {left}")
        self._launch(name, env)
        self._wait_ready([name])

    def ensure_running(self) -> list[str]:
        """Restart every instance whose main process died; return their names."""
        dead = [name for name, m in self._mains.items() if m.popen.poll() is not None]
        for name in dead:
            self.restart(name)
        return dead

    # -- processes ----------------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Main process id of every instance that is running now, by instance name."""
        return {name: m.popen.pid for name, m in self._mains.items() if m.popen.poll() is None}

    def processes(self, component: str | None = None) -> list[DeploymentProcess]:
        """Every live process the deployment started (orphans included), optionally of one instance."""
        return self._tracker.alive(None if component is None else self.topology.instance(component).name)

    # -- logs ---------------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        """Where each instance's stdout and stderr go, one ``<instance>.log`` per instance."""
        return self.home / "component-logs"

    def component_log(self, component: str) -> Path:
        """The log file of an instance (all its incarnations) or of ``"db-migrate"``."""
        name = component if component == "db-migrate" else self.topology.instance(component).name
        return self.log_dir / f"{name}.log"

    def log_tail(self, component: str, lines: int = 40) -> str:
        try:
            text = self.component_log(component).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_tails(self, lines: int = 40) -> str:
        """The end of every instance's log, with headers: what to print when a test fails."""
        parts = []
        for name in [*self.instances, "db-migrate"]:
            parts.append(f"----- {self.component_log(name)} (last {lines} lines) -----")
            parts.append(self.log_tail(name, lines))
        return "\n".join(parts)

    # -- internals ----------------------------------------------------------------------------------

    def _migrate_db(self) -> None:
        with self.component_log("db-migrate").open("ab") as out:
            result = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=self._env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=self.startup_timeout_seconds,
                check=False,
            )
        if result.returncode != 0:
            raise ComponentExitedError("db migrate", result.returncode, self.log_tail("db-migrate"))

    def _launch(self, name: str, env: Mapping[str, str] | None = None) -> None:
        instance = self.topology.instance(name)
        launched_at = dt.datetime.now(dt.timezone.utc)
        server = self._servers.get(name)
        if server is not None:
            argv, user, cwd = server.command(), server.run_as(), server.directory
            full_env = {**inherited_env(), **(env or {})}
        else:
            argv = [sys.executable, "-m", "airflow", *self.topology.command(instance)]
            user, cwd = None, self.home
            full_env = {**self._env, **instance_env(instance), **(env or {})}
        log = self.component_log(name)
        with log.open("ab") as out:
            out.write(f"\n===== {' '.join(argv[-3:])} started {launched_at.isoformat()} =====\n".encode())
            out.flush()
            offset = out.tell()
            popen = subprocess.Popen(
                argv,
                env=full_env,
                cwd=cwd,
                user=user,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: getsid() attributes every descendant to it, even once orphaned,
                # and a Ctrl-C in our terminal does not reach it.
                start_new_session=True,
            )
        self._mains[name] = _Main(popen, launched_at, offset)
        self._tracker.add_main(popen.pid, name)

    def _main(self, component: str) -> _Main:
        name = self.topology.instance(component).name
        try:
            return self._mains[name]
        except KeyError:
            raise DeploymentError(f"{name} of {self!r} was never started; start() the deployment") from None

    def _stop_signal(self, name: str) -> signal.Signals:
        server = self._servers.get(name)
        return server.stop_signal if server is not None else signal.SIGTERM

    def _wait_ready(self, names: Iterable[str]) -> None:
        pending = list(names)
        deadline = time.monotonic() + self.startup_timeout_seconds
        while pending:
            for name in list(pending):
                main = self._mains[name]
                if main.popen.poll() is not None:
                    raise ComponentExitedError(name, main.popen.returncode, self.log_tail(name))
                if self._is_ready(self.topology.instance(name), main):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"{pending} to be ready", self.startup_timeout_seconds, self.log_tails(10)
                )
            if pending:
                time.sleep(0.2)

    def _is_ready(self, instance: Instance, main: _Main) -> bool:
        if (server := self._servers.get(instance.name)) is not None:
            return server.is_ready()
        if instance.component == "celery-worker":
            # Celery logs "<node name> ready." once it consumes from the broker; no REST shows workers.
            with self.component_log(instance.name).open("rb") as log:
                log.seek(main.log_offset)
                return b" ready." in log.read()
        try:
            if instance.component == "api-server":
                self.api("GET", "/version", timeout_seconds=2)
                return True
            # A running job of this instance's host that started after our launch means *this*
            # incarnation is up (the health endpoint calls a SIGKILLed one healthy until its
            # heartbeat is stale).
            params = {
                "job_type": JOB_TYPES[instance.component],
                "job_state": "running",
                "hostname": instance.hostname,
                "start_date_gte": main.launched_at.isoformat(),
            }
            jobs = self.api("GET", "/jobs", params=params, timeout_seconds=2)
        except AirflowApiError:
            return False
        return bool(jobs["total_entries"])

"""Launching one instance of an `AirflowDeployment`, telling when it is ready, and where its output goes.

The deployment decides *when* (start, restart, stop); the launcher knows *how*: the command line and
environment of an instance (an ``airflow`` component or a server), its own session, its log file
(`ComponentLogs`), and what "ready" means for it. Readiness of an Airflow instance is asked of the
REST API, so the launcher holds the deployment's REST client; it never signals a process (the
deployment and its ``Faults`` do, through the shared ``ProcessTracker``).
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from resumable_triggers.testing.airflow._config import inherited_env, instance_env
from resumable_triggers.testing.airflow._errors import (
    AirflowApiError,
    ComponentExitedError,
    DeploymentError,
    WaitTimeoutError,
)
from resumable_triggers.testing.airflow._processes import ProcessTracker
from resumable_triggers.testing.airflow._rest import AirflowRestClient
from resumable_triggers.testing.airflow._servers import Server
from resumable_triggers.testing.airflow._topology import JOB_TYPES, Instance, Topology


@dataclass(frozen=True, slots=True)
class ComponentLogs:
    """Where each instance's stdout and stderr go: ``<log_dir>/<instance>.log``, every incarnation
    appended, plus ``db-migrate.log``."""

    log_dir: Path
    topology: Topology

    def path(self, component: str) -> Path:
        """The log file of an instance (all its incarnations) or of ``"db-migrate"``."""
        name = component if component == "db-migrate" else self.topology.instance(component).name
        return self.log_dir / f"{name}.log"

    def tail(self, component: str, lines: int = 40) -> str:
        """The last ``lines`` lines of a log ("" if the instance never wrote one)."""
        try:
            text = self.path(component).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def tails(self, lines: int = 40) -> str:
        """The end of every instance's log, with headers: what to print when a test fails."""
        parts = []
        for name in [*self.topology.names, "db-migrate"]:
            parts.append(f"----- {self.path(name)} (last {lines} lines) -----")
            parts.append(self.tail(name, lines))
        return "\n".join(parts)


@dataclass(slots=True)
class Main:
    """The main process of one incarnation of an instance."""

    popen: subprocess.Popen[bytes]
    launched_at: dt.datetime
    log_offset: int  # where this incarnation's output starts in the instance's log

    def is_running(self) -> bool:
        return self.popen.poll() is None


class Launcher:
    """Starts the instances of ``topology`` under ``home`` with ``env``, one ``Main`` per instance.

    ``servers`` are the deployment's PostgreSQL and Redis by instance name; ``tracker`` learns of each
    main process at launch, so that everything it forks is found later.
    """

    def __init__(
        self,
        *,
        topology: Topology,
        home: Path,
        env: Mapping[str, str],
        servers: Mapping[str, Server],
        tracker: ProcessTracker,
        rest: AirflowRestClient,
        startup_timeout_seconds: float,
    ) -> None:
        self.topology = topology
        self.home = home
        self.logs = ComponentLogs(home / "component-logs", topology)
        self.servers = servers
        self.startup_timeout_seconds = startup_timeout_seconds
        self.mains: dict[str, Main] = {}
        self._env = env
        self._tracker = tracker
        self._rest = rest

    def main(self, component: str) -> Main:
        """The current incarnation of an instance; DeploymentError if it was never started."""
        name = self.topology.instance(component).name
        try:
            return self.mains[name]
        except KeyError:
            raise DeploymentError(f"{name} was never started; start() the deployment") from None

    def stop_signal(self, name: str) -> signal.Signals:
        """The signal that shuts the instance down quickly: SIGTERM, or the server's own."""
        server = self.servers.get(name)
        return server.stop_signal if server is not None else signal.SIGTERM

    def launch(self, name: str, env: Mapping[str, str] | None = None) -> None:
        """Start a new incarnation of instance ``name``; ``env`` applies to this incarnation only."""
        instance = self.topology.instance(name)
        launched_at = dt.datetime.now(dt.timezone.utc)
        server = self.servers.get(name)
        if server is not None:
            argv, user, cwd = server.command(), server.run_as(), server.directory
            full_env = {**inherited_env(), **(env or {})}
        else:
            argv = [sys.executable, "-m", "airflow", *self.topology.command(instance)]
            user, cwd = None, self.home
            full_env = {**self._env, **instance_env(instance), **(env or {})}
        with self.logs.path(name).open("ab") as out:
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
        self.mains[name] = Main(popen, launched_at, offset)
        self._tracker.add_main(popen.pid, name)

    def migrate_db(self) -> None:
        """``airflow db migrate``, its output in the ``db-migrate`` log; ComponentExitedError if it fails."""
        with self.logs.path("db-migrate").open("ab") as out:
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
            raise ComponentExitedError("db migrate", result.returncode, self.logs.tail("db-migrate"))

    def wait_ready(self, names: Iterable[str]) -> None:
        """Wait until every named instance is ready; ComponentExitedError as soon as one exits."""
        pending = list(names)
        deadline = time.monotonic() + self.startup_timeout_seconds
        while pending:
            for name in list(pending):
                main = self.mains[name]
                if not main.is_running():
                    raise ComponentExitedError(name, main.popen.returncode, self.logs.tail(name))
                if self._is_ready(self.topology.instance(name), main):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"{pending} to be ready", self.startup_timeout_seconds, self.logs.tails(10)
                )
            if pending:
                time.sleep(0.2)

    def _is_ready(self, instance: Instance, main: Main) -> bool:
        if (server := self.servers.get(instance.name)) is not None:
            return server.is_ready()
        if instance.component == "celery-worker":
            # Celery logs "<node name> ready." once it consumes from the broker; no REST shows workers.
            with self.logs.path(instance.name).open("rb") as log:
                log.seek(main.log_offset)
                return b" ready." in log.read()
        try:
            if instance.component == "api-server":
                self._rest.api("GET", "/version", timeout_seconds=2)
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
            jobs = self._rest.api("GET", "/jobs", params=params, timeout_seconds=2)
        except AirflowApiError:
            return False
        return bool(jobs["total_entries"])

"""A real Airflow 3.3 deployment in subprocesses, for end-to-end tests and ``resumable-triggers demo``.

::

    with AirflowDeployment(dags_folder=Path("dags"), connections={"databricks_default": {...}}) as af:
        af.wait_for_dag("my_dag")
        run_id = af.trigger_dag_run("my_dag")
        af.wait_for_task_state("my_dag", run_id, "submit", states={"deferred"})
        af.kill("triggerer", signal.SIGKILL)
        af.restart("triggerer")
        af.wait_for_dag_run_state("my_dag", run_id, states={"success"})

Each deployment has its own temporary ``AIRFLOW_HOME``, SQLite database, LocalExecutor and free ports
on 127.0.0.1. Components are separate ``airflow <component>`` processes, each in its own session,
whose output goes to ``<home>/component-logs/<component>.log``. Runs and user actions go through the
public REST API (`AirflowRestClient`). ``stop()`` kills every process the deployment ever started,
orphans included, by PID. The harness knows nothing about Databricks: callers pass connections and
environment.

Errors::

    DeploymentError
    ├── ComponentExitedError   a component died while the deployment waited for it
    ├── ApiError               the REST API answered with an error status, or not at all
    ├── UnexpectedStateError   a task or run ended in a state other than the awaited ones
    └── WaitTimeoutError       (also a TimeoutError) a wait gave up; carries the last value seen
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from resumable_triggers.testing._deployment_errors import (
    ApiError,
    ComponentExitedError,
    DeploymentError,
    UnexpectedStateError,
    WaitTimeoutError,
)
from resumable_triggers.testing._deployment_processes import DeploymentProcess, ProcessTracker
from resumable_triggers.testing._deployment_rest import AirflowRestClient

__all__ = [
    "COMPONENTS",
    "AirflowDeployment",
    "AirflowRestClient",
    "ApiError",
    "ComponentExitedError",
    "DeploymentError",
    "DeploymentProcess",
    "TaskProcesses",
    "UnexpectedStateError",
    "WaitTimeoutError",
]

COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")

# component -> the job it registers: a running one that started after our launch means *this*
# incarnation is up (the health endpoint calls a SIGKILLed one healthy until its heartbeat is stale).
_JOB_TYPES = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}

# Fast, deterministic settings measured on Airflow 3.3.2 (docs/airflow-3.3-facts.md, "Running a real
# Airflow here").
_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
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

# Inherited variables that would change what the deployment does: the test session's own Airflow
# configuration (unit-test mode, its AIRFLOW_HOME), pytest's, and real cloud credentials.
_INHERITED_PREFIXES_DROPPED = ("AIRFLOW", "_AIRFLOW", "PYTEST_", "DATABRICKS_", "ARM_")


@dataclass(frozen=True, slots=True)
class TaskProcesses:
    """The processes running one task instance try on the LocalExecutor.

    ``supervisor_pid`` is the LocalExecutor worker that runs the supervisor (``None`` once it was
    killed: the task process is then an orphan, and keeps running). ``task_pid`` is the process it
    forked to run ``execute()``, ``None`` until then; ``task_started`` turns True when that process
    started the task runner (it renamed itself). ``ti_id`` is the try's id, ``task_instance()["id"]``.
    """

    ti_id: str
    supervisor_pid: int | None
    task_pid: int | None
    task_started: bool


@dataclass(slots=True)
class _Main:
    popen: subprocess.Popen[bytes]
    launched_at: dt.datetime


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secret() -> str:
    # 32 url-safe base64 bytes: valid as a Fernet key and as a JWT or session secret alike.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class AirflowDeployment(AirflowRestClient):
    """Airflow components as subprocesses on 127.0.0.1, driven over REST; a context manager.

    :param dags_folder: the folder the DAG processor parses.
    :param connections: connection id -> Airflow connection, as a dict (``conn_type``, ``host``,
        ``password``, ``extra``...) or as the JSON or URI string Airflow accepts, e.g. from
        ``resumable_triggers.testing.airflow_connection()``; passed as ``AIRFLOW_CONN_<ID>`` variables.
    :param env: extra environment variables for every component, applied last: they override the
        harness's settings, e.g. ``{"AIRFLOW__CORE__PARALLELISM": "8"}``.
    :param components: which components to run; ``"api-server"`` is required (readiness is checked
        through it, and workers reach the Execution API there).
    :param home: the AIRFLOW_HOME; by default a new temporary directory that ``stop()`` deletes
        unless ``keep_home`` is true.
    :param startup_timeout_seconds: how long ``start()`` and ``restart()`` wait for readiness.
    """

    def __init__(
        self,
        *,
        dags_folder: Path,
        connections: Mapping[str, Mapping[str, Any] | str] | None = None,
        env: Mapping[str, str] | None = None,
        components: Collection[str] = COMPONENTS,
        home: Path | None = None,
        keep_home: bool = False,
        startup_timeout_seconds: float = 120.0,
    ) -> None:
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown components {unknown}; choose from {list(COMPONENTS)}")
        if "api-server" not in components:
            raise ValueError("components must include 'api-server': readiness and workers depend on it")
        if not Path(dags_folder).is_dir():
            raise ValueError(f"dags_folder {dags_folder} is not a directory")
        self.port = _free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.dags_folder = Path(dags_folder).resolve()
        self.components = tuple(c for c in COMPONENTS if c in components)
        self.keep_home = keep_home
        self.startup_timeout_seconds = startup_timeout_seconds
        self._owns_home = home is None
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="airflow-deployment-"))
        self._env = self._build_env(connections or {}, env or {})
        self._mains: dict[str, _Main] = {}
        self._tracker = ProcessTracker()
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

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate the database, start the components in parallel, wait until all are ready (~10 s)."""
        if self._started:
            raise DeploymentError(f"{self!r} was already started; create a new deployment instead")
        self._started = True
        # Covers a forgotten stop(), and an exception that ends the interpreter outside a `with`.
        atexit.register(self.stop)
        self._tracker.start()
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._migrate_db()
            for component in self.components:
                self._launch(component)
            self._wait_ready(self.components)
        except BaseException:
            self.stop()
            raise

    def stop(self, *, grace_seconds: float = 5.0) -> None:
        """Stop everything the deployment started, by PID, orphans included; safe to call twice.

        Main processes get SIGTERM and ``grace_seconds`` to exit (a triggerer needs ~10 s, so it is
        usually killed), then every process ever seen alive gets SIGKILL. Raises ``DeploymentError``
        if one survives that.
        """
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            alive_mains = [m.popen.pid for m in self._mains.values() if m.popen.poll() is None]
            self._tracker.send(alive_mains, signal.SIGTERM)
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
        if self._owns_home and not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def kill(
        self,
        component: str,
        sig: signal.Signals = signal.SIGKILL,
        *,
        whole_tree: bool = False,
        wait: bool = True,
        timeout_seconds: float = 30.0,
    ) -> None:
        """Signal a component's main process: a crash (SIGKILL) or a shutdown (SIGTERM).

        Its children are left alone, as when a process dies on a plain VM: LocalExecutor workers (and
        the tasks they supervise) and serve-logs survive a SIGKILL as orphans. ``whole_tree=True``
        signals every live process of the component instead, like losing its container. With
        ``wait``, returns once the signalled processes are gone (a SIGTERMed triggerer takes ~10 s).
        """
        main = self._main(component)
        pids = [p.pid for p in self._tracker.alive(component)] if whole_tree else [main.popen.pid]
        if main.popen.poll() is not None and not whole_tree:
            raise DeploymentError(f"{component} is not running (exit code {main.popen.returncode})")
        self._tracker.send(pids, sig)
        if not wait:
            return
        left = self._tracker.wait_gone(pids, timeout_seconds)
        with contextlib.suppress(subprocess.TimeoutExpired):
            main.popen.wait(timeout=1)  # reap it now, so that it is no zombie of ours
        if left:
            raise WaitTimeoutError(f"{component} processes to exit after {sig.name}", timeout_seconds, left)

    def restart(
        self, component: str, *, grace_seconds: float = 15.0, env: Mapping[str, str] | None = None
    ) -> None:
        """(Re)start a component and wait until its new incarnation is ready.

        A running main process is stopped first (SIGTERM, then SIGKILL after ``grace_seconds``; a
        triggerer needs ~10 s). Leftovers of earlier incarnations that would get in the new one's way
        are SIGKILLed: serve-logs holding its port, idle LocalExecutor workers, trigger runners, DAG
        parsers. Running tasks (supervisors and task processes) are left alone: what happens to them is
        the test's business.

        ``env``: extra environment variables for this incarnation only, on top of the deployment's
        (e.g. a triggerer with ``AIRFLOW_DISABLE_GREENBACK_PORTAL``); the next restart drops them.
        """
        main = self._main(component)
        if main.popen.poll() is None:
            self._tracker.send([main.popen.pid], signal.SIGTERM)
            if self._tracker.wait_gone([main.popen.pid], grace_seconds):
                self._tracker.kill_all([main.popen.pid])
            main.popen.wait(timeout=10)
        stale = [p.pid for p in self._tracker.alive(component) if p.role not in ("supervisor", "task")]
        left = self._tracker.kill_all(stale)
        if left:
            raise DeploymentError(f"leftovers of {component} survived SIGKILL: {left}")
        self._launch(component, env)
        self._wait_ready([component])

    def ensure_running(self) -> list[str]:
        """Restart every component whose main process died; return their names."""
        dead = [c for c, m in self._mains.items() if m.popen.poll() is not None]
        for component in dead:
            self.restart(component)
        return dead

    # -- processes ----------------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Main process id of every component that is running now."""
        return {c: m.popen.pid for c, m in self._mains.items() if m.popen.poll() is None}

    def processes(self, component: str | None = None) -> list[DeploymentProcess]:
        """Every live process the deployment started (orphans included), optionally of one component."""
        return self._tracker.alive(component)

    def task_processes(
        self, dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None
    ) -> list[TaskProcesses]:
        """Supervisor and task process of every running task instance try, from process titles.

        Airflow 3.3's LocalExecutor worker runs the supervisor in-process, titled
        ``airflow worker -- LocalExecutor: <ti id>``; the task process it forks starts as a copy of it,
        then retitles itself ``airflow worker -- <ti id>``. With filters, REST names the ids of the
        *current* tries that match, so orphans of older tries are listed only without filters (their
        PIDs are also in ``task_tries()``).
        """
        procs = self.processes()
        supervisor_titled = {p.pid: p for p in procs if p.role == "supervisor"}
        entries: dict[str, dict[str, Any]] = {}
        for proc in procs:
            if proc.ti_id is None:
                continue
            entry = entries.setdefault(proc.ti_id, {"supervisor": None, "task": None, "started": False})
            parent = supervisor_titled.get(proc.ppid)
            if proc.role == "task" or (parent is not None and parent.ti_id == proc.ti_id):
                entry["task"], entry["started"] = proc.pid, proc.role == "task"
            else:
                entry["supervisor"] = proc.pid
        found = [
            TaskProcesses(ti_id, e["supervisor"], e["task"], e["started"])
            for ti_id, e in sorted(entries.items())
        ]
        if dag_id is None and run_id is None and task_id is None:
            return found
        wanted = self.current_ti_ids(dag_id, run_id, task_id)
        return [tp for tp in found if tp.ti_id in wanted]

    def wait_for_task_processes(
        self, dag_id: str, run_id: str, task_id: str, *, timeout_seconds: float = 60.0
    ) -> TaskProcesses:
        """Wait until the current try of a task has a supervisor and a started task process.

        "Started" means the task process began the task runner's start-up (it renamed itself), not
        that ``execute()`` runs yet: start-up still parses the DAG and logs for a second or more. A
        task process orphaned by a supervisor SIGKILL dies of a broken pipe at its next log line or
        supervisor call, so wait for a side effect of ``execute()`` when the moment matters.
        """

        def probe() -> TaskProcesses | None:
            started = [
                tp
                for tp in self.task_processes(dag_id, run_id, task_id)
                if tp.task_started and tp.supervisor_pid is not None
            ]
            return started[0] if started else None

        what = f"the processes of {dag_id}/{run_id}/{task_id}"
        return self.wait_for(what, probe, timeout_seconds=timeout_seconds)

    # -- logs ---------------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        """Where each component's stdout and stderr go, one ``<component>.log`` per component."""
        return self.home / "component-logs"

    def component_log(self, component: str) -> Path:
        """The log file of a component (all its incarnations) or of ``"db-migrate"``."""
        return self.log_dir / f"{component}.log"

    def log_tail(self, component: str, lines: int = 40) -> str:
        try:
            text = self.component_log(component).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_tails(self, lines: int = 40) -> str:
        """The end of every component's log, with headers: what to print when a test fails."""
        parts = []
        for component in [*self.components, "db-migrate"]:
            parts.append(f"----- {self.component_log(component)} (last {lines} lines) -----")
            parts.append(self.log_tail(component, lines))
        return "\n".join(parts)

    # -- internals ----------------------------------------------------------------------------------

    def _build_env(
        self, connections: Mapping[str, Mapping[str, Any] | str], extra: Mapping[str, str]
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES_DROPPED)}
        env.update(_SETTINGS)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
                # One value for all components: otherwise each generates its own, and the API server
                # rejects the tokens the scheduler hands to workers.
                "AIRFLOW__CORE__FERNET_KEY": _secret(),
                "AIRFLOW__API_AUTH__JWT_SECRET": _secret(),
                "AIRFLOW__API__SECRET_KEY": _secret(),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for conn_id, conn in connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn if isinstance(conn, str) else json.dumps(conn)
        env.update(extra)
        return env

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

    def _launch(self, component: str, env: Mapping[str, str] | None = None) -> None:
        launched_at = dt.datetime.now(dt.timezone.utc)
        with self.component_log(component).open("ab") as out:
            out.write(f"\n===== airflow {component} started {launched_at.isoformat()} =====\n".encode())
            out.flush()
            popen = subprocess.Popen(
                [sys.executable, "-m", "airflow", component],
                env={**self._env, **env} if env else self._env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: getsid() attributes every descendant to it, even once orphaned,
                # and a Ctrl-C in our terminal does not reach it.
                start_new_session=True,
            )
        self._mains[component] = _Main(popen, launched_at)
        self._tracker.add_main(popen.pid, component)

    def _main(self, component: str) -> _Main:
        try:
            return self._mains[component]
        except KeyError:
            raise ValueError(
                f"{component!r} is not one of the components of {self!r}: {self.components}"
            ) from None

    def _wait_ready(self, components: Iterable[str]) -> None:
        pending = list(components)
        deadline = time.monotonic() + self.startup_timeout_seconds
        while pending:
            for component in list(pending):
                main = self._mains[component]
                if main.popen.poll() is not None:
                    raise ComponentExitedError(component, main.popen.returncode, self.log_tail(component))
                if self._is_ready(component, main):
                    pending.remove(component)
            if pending and time.monotonic() > deadline:
                raise WaitTimeoutError(
                    f"{pending} to be ready", self.startup_timeout_seconds, self.log_tails(10)
                )
            if pending:
                time.sleep(0.2)

    def _is_ready(self, component: str, main: _Main) -> bool:
        try:
            if component == "api-server":
                self.api("GET", "/version", timeout_seconds=2)
                return True
            params = {
                "job_type": _JOB_TYPES[component],
                "job_state": "running",
                "start_date_gte": main.launched_at.isoformat(),
            }
            jobs = self.api("GET", "/jobs", params=params, timeout_seconds=2)
        except ApiError:
            return False
        return bool(jobs["total_entries"])

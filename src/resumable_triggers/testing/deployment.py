"""A real Airflow 3.3 deployment in subprocesses, for end-to-end tests and ``resumable-triggers demo``.

::

    with AirflowDeployment(dags_folder=Path("dags"), connections={"databricks_default": {...}}) as af:
        af.wait_for_dag("my_dag")
        run_id = af.trigger_dag_run("my_dag")
        af.wait_for_task_state("my_dag", run_id, "submit", states={"deferred"})
        af.kill("triggerer", signal.SIGKILL)
        af.restart("triggerer")
        af.wait_for_dag_run_state("my_dag", run_id, states={"success"})

Each deployment has its own temporary ``AIRFLOW_HOME``, SQLite database, LocalExecutor and free ports on
127.0.0.1. Components are separate ``airflow <component>`` processes whose output goes to
``<home>/component-logs/<component>.log``. Runs and user actions go through the public REST API (each
``airflow`` CLI call costs ~3 s of start-up). ``stop()`` kills every process the deployment ever
started, orphans included, by PID. It knows nothing about Databricks: callers pass connections and
environment.

Errors::

    DeploymentError
    ├── ComponentExitedError   a component died while the deployment waited for it
    ├── ApiError               the REST API answered with an error status, or not at all
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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import psutil

from resumable_triggers.testing._deployment_processes import (
    DeploymentProcess,
    ProcessTracker,
    process_title,
)

__all__ = [
    "COMPONENTS",
    "AirflowDeployment",
    "ApiError",
    "ComponentExitedError",
    "DeploymentError",
    "DeploymentProcess",
    "TaskProcesses",
    "WaitTimeoutError",
]

COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")

# component -> the job type it registers, which tells us that *this* incarnation is up and heartbeating.
_JOB_TYPES = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}

_TERMINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
_TERMINAL_RUN_STATES = frozenset({"success", "failed"})

# Fast, deterministic settings measured on Airflow 3.3.2 (see docs: "Running a real Airflow here").
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
    # Shrinks Airflow's "trigger fires within ~5 s of deferring" race to ~1 s.
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
}

# Inherited variables that would change what the deployment does: the test session's own Airflow
# configuration (unit-test mode, its AIRFLOW_HOME), pytest's markers, and real cloud credentials.
_INHERITED_PREFIXES_DROPPED = ("AIRFLOW", "_AIRFLOW", "PYTEST_", "DATABRICKS_", "ARM_")

_T = TypeVar("_T")


class DeploymentError(Exception):
    """Base class of this module's errors."""


class ComponentExitedError(DeploymentError):
    """A component's main process exited while the deployment waited for it to become ready."""

    def __init__(self, component: str, returncode: int | None, log_tail: str) -> None:
        self.component = component
        self.returncode = returncode
        self.log_tail = log_tail
        super().__init__(
            f"Airflow {component} exited with code {returncode} before it was ready; "
            f"the end of its log follows:\n{log_tail}"
        )


class ApiError(DeploymentError):
    """The REST API answered ``method path`` with an error ``status`` (``None``: no answer at all)."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        answer = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{method} {path} failed with {answer}: {detail}")


class WaitTimeoutError(DeploymentError, TimeoutError):
    """A wait gave up after ``timeout_seconds``; ``last_seen`` is the last value it observed."""

    def __init__(self, what: str, timeout_seconds: float, last_seen: object) -> None:
        self.what = what
        self.timeout_seconds = timeout_seconds
        self.last_seen = last_seen
        super().__init__(f"gave up waiting for {what} after {timeout_seconds:g} s; last seen: {last_seen!r}")


@dataclass(frozen=True, slots=True)
class TaskProcesses:
    """The processes running one task instance try on the LocalExecutor.

    ``supervisor_pid`` is the LocalExecutor worker that runs the supervisor (``None`` after it was
    killed: the task process is then an orphan and keeps running). ``task_pid`` is the forked process
    that runs ``execute()``; it is ``None`` until the supervisor forked it.
    """

    ti_id: str
    supervisor_pid: int | None
    task_pid: int | None


@dataclass(slots=True)
class _Main:
    popen: subprocess.Popen[bytes]
    launched_at: dt.datetime


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _secret() -> str:
    # 32 url-safe base64 bytes: valid as a Fernet key and as a JWT/session secret alike.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class AirflowDeployment:
    """Airflow components as subprocesses on 127.0.0.1, driven over REST; a context manager.

    :param dags_folder: the folder the DAG processor parses.
    :param connections: connection id -> Airflow connection JSON (``conn_type``, ``host``, ``password``,
        ``extra``...), passed as ``AIRFLOW_CONN_<ID>`` variables.
    :param env: extra environment variables for every component, applied last: they override the
        settings above, e.g. ``{"AIRFLOW__CORE__PARALLELISM": "8"}``.
    :param components: which components to run; ``"api-server"`` is required (everything is checked
        through it, and workers reach the Execution API there).
    :param home: the AIRFLOW_HOME to use; by default a fresh temporary directory, deleted by ``stop()``
        unless ``keep_home`` is set.
    :param startup_timeout_seconds: how long ``start()`` and ``restart()`` wait for readiness.
    """

    def __init__(
        self,
        *,
        dags_folder: Path,
        connections: Mapping[str, Mapping[str, Any]] | None = None,
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
        self.dags_folder = Path(dags_folder).resolve()
        self.components = tuple(c for c in COMPONENTS if c in components)
        self.keep_home = keep_home
        self.startup_timeout_seconds = startup_timeout_seconds
        self._owns_home = home is None
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="airflow-deployment-"))
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._connections = dict(connections or {})
        self._extra_env = dict(env or {})
        self._env = self._build_env()
        self._mains: dict[str, _Main] = {}
        self._tracker = ProcessTracker()
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        return f"<AirflowDeployment {self.base_url} home={self.home}>"

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> AirflowDeployment:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Migrate the database, start every component in parallel and wait until all are ready."""
        if self._started:
            raise DeploymentError(f"{self!r} was already started; create a new deployment instead")
        self._started = True
        # Covers a forgotten stop() and interpreter exit on an exception outside a `with` block.
        atexit.register(self.stop)
        self._tracker.start()
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._migrate_db()
            for component in self.components:
                self._launch(component)
            self._wait_ready(self.components, self.startup_timeout_seconds)
        except BaseException:
            self.stop()
            raise

    def stop(self, *, grace_seconds: float = 5.0) -> None:
        """Stop everything the deployment started, by PID, orphans included; safe to call twice.

        Main processes get SIGTERM and ``grace_seconds`` to exit, then every process ever seen that is
        still alive gets SIGKILL. Raises ``DeploymentError`` if any process survives that.
        """
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        try:
            alive_mains = [m.popen.pid for m in self._mains.values() if m.popen.poll() is None]
            self._tracker.signal(alive_mains, signal.SIGTERM)
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
            survivors = self._tracker.alive()
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
        """Send ``sig`` to a component's main process, like a crash (SIGKILL) or a shutdown (SIGTERM).

        Children are left alone, as when a process dies on a plain VM: LocalExecutor workers (and the
        tasks they supervise) and serve-logs children survive a scheduler or triggerer SIGKILL as
        orphans. ``whole_tree=True`` signals every live process of the component instead, like losing
        its container. With ``wait`` the call returns once the signalled processes are gone.
        """
        main = self._main(component)
        if main.popen.poll() is not None:
            raise DeploymentError(f"{component} is not running (exit code {main.popen.returncode})")
        pids = [p.pid for p in self._tracker.alive(component)] if whole_tree else [main.popen.pid]
        self._tracker.signal(pids, sig)
        if not wait:
            return
        left = self._tracker.wait_gone(pids, timeout_seconds)
        with contextlib.suppress(subprocess.TimeoutExpired):
            main.popen.wait(timeout=1)  # reap it, so it is not a zombie of ours
        if left:
            raise WaitTimeoutError(f"{component} processes to exit after {sig.name}", timeout_seconds, left)

    def restart(self, component: str, *, grace_seconds: float = 10.0) -> None:
        """(Re)start a component and wait until its new incarnation is ready.

        A running main process is stopped first (SIGTERM, SIGKILL after ``grace_seconds``). Leftovers of
        earlier incarnations that would get in the way of the new one are SIGKILLed: the serve-logs
        orphan holding its port, idle LocalExecutor workers, trigger runners, DAG parsers. Running
        tasks (supervisors and task processes) are left alone: what happens to them is up to the test.
        """
        main = self._main(component)
        if main.popen.poll() is None:
            self._tracker.signal([main.popen.pid], signal.SIGTERM)
            if self._tracker.wait_gone([main.popen.pid], grace_seconds):
                self._tracker.kill_all([main.popen.pid])
            main.popen.wait(timeout=10)
        stale = [p.pid for p in self._tracker.alive(component) if p.role not in ("supervisor", "task")]
        left = self._tracker.kill_all(stale)
        if left:
            raise DeploymentError(f"leftovers of {component} survived SIGKILL: {left}")
        self._launch(component)
        self._wait_ready([component], self.startup_timeout_seconds)

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
        """Supervisor and task process of running task instance tries, found from process titles.

        Airflow 3.3's LocalExecutor worker runs the supervisor in-process and titles itself
        ``airflow worker -- LocalExecutor: <ti id>``; the task process it forks is first a copy of it,
        then titles itself ``airflow worker -- <ti id>``. With filters, the REST API names the ids of
        the *current* tries that match, so orphans of older tries are only listed without filters.
        """
        by_ti: dict[str, dict[str, int | None]] = {}
        procs = self.processes()
        supervisor_titled = {p.pid: p for p in procs if p.role == "supervisor"}
        for proc in procs:
            if proc.ti_id is None:
                continue
            entry = by_ti.setdefault(proc.ti_id, {"supervisor": None, "task": None})
            parent = supervisor_titled.get(proc.ppid)
            if proc.role == "task" or (parent is not None and parent.ti_id == proc.ti_id):
                entry["task"] = proc.pid
            else:
                entry["supervisor"] = proc.pid
        found = [TaskProcesses(ti, e["supervisor"], e["task"]) for ti, e in sorted(by_ti.items())]
        if dag_id is None and run_id is None and task_id is None:
            return found
        wanted = self._current_ti_ids(dag_id, run_id, task_id)
        return [tp for tp in found if tp.ti_id in wanted]

    def wait_for_task_processes(
        self, dag_id: str, run_id: str, task_id: str, *, timeout_seconds: float = 60.0
    ) -> TaskProcesses:
        """Wait until the current try of a task has a supervisor and a started task process."""

        def probe() -> TaskProcesses | None:
            for tp in self.task_processes(dag_id, run_id, task_id):
                task = self._tracker.process(tp.task_pid) if tp.task_pid is not None else None
                # The task process is ready once it renamed itself: it then runs the task runner.
                if tp.supervisor_pid is not None and task is not None and "LocalExecutor" not in _title(task):
                    return tp
            return None

        return self.wait_for(
            f"the task processes of {dag_id}/{run_id}/{task_id}", probe, timeout_seconds=timeout_seconds
        )

    # -- REST: runs and task instances --------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout_seconds: float = 30.0,
    ) -> Any:
        """Call the public REST API at ``/api/v2`` + ``path``; return the decoded JSON answer."""
        url = f"{self.base_url}/api/v2{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = json.dumps(json_body).encode() if json_body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(method, path, exc.code, exc.read().decode(errors="replace")[:2000]) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(method, path, None, str(exc)) from exc
        return json.loads(body) if body else None

    def wait_for_dag(self, dag_id: str, *, timeout_seconds: float = 60.0) -> dict[str, Any]:
        """Wait until the DAG processor registered ``dag_id``; unpause it; return the DAG's REST record."""

        def probe() -> dict[str, Any] | None:
            try:
                dag: dict[str, Any] = self.api("GET", f"/dags/{_quote(dag_id)}")
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
            if dag.get("is_paused"):
                dag = self.api("PATCH", f"/dags/{_quote(dag_id)}", json_body={"is_paused": False})
            return dag

        try:
            return self.wait_for(f"DAG {dag_id} to be parsed", probe, timeout_seconds=timeout_seconds)
        except WaitTimeoutError as exc:
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            raise WaitTimeoutError(exc.what, timeout_seconds, {"import_errors": errors}) from exc

    def trigger_dag_run(
        self, dag_id: str, run_id: str | None = None, conf: Mapping[str, Any] | None = None
    ) -> str:
        """Start a manual run now (no logical date); return its run id (Airflow makes one if None)."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        answer = self.api("POST", f"/dags/{_quote(dag_id)}/dagRuns", json_body=body)
        return str(answer["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}")
        return result

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The current try as REST shows it (``state``, ``try_number``, ``id``, ``pid``...)."""
        result: dict[str, Any] = self.api("GET", self._ti_path(dag_id, run_id, task_id))
        return result

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of the task instance, oldest first, each with its ``state`` and task ``pid``."""
        answer = self.api("GET", self._ti_path(dag_id, run_id, task_id) + "/tries")
        return sorted(answer["task_instances"], key=lambda t: t["try_number"])

    def task_logs(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        """The log of one try (default: the current one) as text, trigger output included."""
        if try_number is None:
            try_number = int(self.task_instance(dag_id, run_id, task_id)["try_number"])
        answer = self.api(
            "GET",
            f"{self._ti_path(dag_id, run_id, task_id)}/logs/{try_number}",
            params={"full_content": "true"},
        )
        return "\n".join(_log_line(entry) for entry in answer.get("content", []))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value a task pushed under ``key``, as the REST API decodes it."""
        path = f"{self._ti_path(dag_id, run_id, task_id)}/xcomEntries/{_quote(key)}"
        return self.api("GET", path)["value"]

    def mark_task_failed(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Mark the task instance failed, as a user in the UI would (a running try is then killed)."""
        self._set_task_state(dag_id, run_id, task_id, "failed")

    def mark_task_success(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Mark the task instance successful, as a user in the UI would."""
        self._set_task_state(dag_id, run_id, task_id, "success")

    def clear_task(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear the task instance whatever its state, as a user in the UI would: a new try follows."""
        self.api(
            "POST",
            f"/dags/{_quote(dag_id)}/clearTaskInstances",
            json_body={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        *,
        states: Collection[str],
        timeout_seconds: float = 60.0,
    ) -> dict[str, Any]:
        """Wait until the task instance is in one of ``states``; return its REST record.

        Fails early if it reaches a final state that is not wanted. Polls every 0.2 s, so a state held
        for less than that (``up_for_retry`` with no retry delay, say) can be missed.
        """
        wanted = frozenset(states)
        return self._wait_for_state(
            f"{dag_id}/{run_id}/{task_id} to be {sorted(wanted)}",
            lambda: self.task_instance(dag_id, run_id, task_id),
            wanted,
            _TERMINAL_TASK_STATES,
            timeout_seconds,
        )

    def wait_for_dag_run_state(
        self, dag_id: str, run_id: str, *, states: Collection[str], timeout_seconds: float = 60.0
    ) -> dict[str, Any]:
        """Wait until the DAG run is in one of ``states``; fail early on an unwanted final state."""
        wanted = frozenset(states)
        return self._wait_for_state(
            f"DAG run {dag_id}/{run_id} to be {sorted(wanted)}",
            lambda: self.dag_run(dag_id, run_id),
            wanted,
            _TERMINAL_RUN_STATES,
            timeout_seconds,
        )

    def fail_active_dag_runs(self) -> list[tuple[str, str]]:
        """Mark every queued or running DAG run failed (stops its tasks); return their (dag_id, run_id).

        Useful between tests that share a deployment, so leftovers do not hold worker slots.
        """
        answer = self.api("GET", "/dags/~/dagRuns", params={"state": ["queued", "running"], "limit": 100})
        failed = []
        for run in answer["dag_runs"]:
            path = f"/dags/{_quote(run['dag_id'])}/dagRuns/{_quote(run['dag_run_id'])}"
            self.api("PATCH", path, json_body={"state": "failed"})
            failed.append((run["dag_id"], run["dag_run_id"]))
        return failed

    def wait_for(self, what: str, probe: Callable[[], _T | None], *, timeout_seconds: float = 60.0) -> _T:
        """Poll ``probe`` every 0.2 s until it returns something other than None, and return that.

        ``what`` names the awaited condition in the ``WaitTimeoutError``. REST outages (no answer, or
        HTTP 5xx, e.g. while the API server restarts) count as "not yet"; other API errors propagate.
        """
        deadline = time.monotonic() + timeout_seconds
        last: object = None
        while True:
            try:
                value = probe()
                if value is not None:
                    return value
            except ApiError as exc:
                if exc.status is not None and exc.status < 500:
                    raise
                last = exc
            if time.monotonic() > deadline:
                raise WaitTimeoutError(what, timeout_seconds, last)
            time.sleep(0.2)

    # -- logs ---------------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        """Where each component's stdout and stderr go, one ``<component>.log`` per component."""
        return self.home / "component-logs"

    def component_log(self, component: str) -> Path:
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

    def _build_env(self) -> dict[str, str]:
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
                # Shared by all components: otherwise each generates its own and the API server
                # rejects the tokens the scheduler hands to workers.
                "AIRFLOW__CORE__FERNET_KEY": _secret(),
                "AIRFLOW__API_AUTH__JWT_SECRET": _secret(),
                "AIRFLOW__API__SECRET_KEY": _secret(),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for conn_id, conn in self._connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        env.update(self._extra_env)
        return env

    def _migrate_db(self) -> None:
        log = self.component_log("db-migrate")
        with log.open("ab") as out:
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

    def _launch(self, component: str) -> None:
        launched_at = dt.datetime.now(dt.timezone.utc)
        with self.component_log(component).open("ab") as out:
            out.write(f"\n===== airflow {component} started {launched_at.isoformat()} =====\n".encode())
            out.flush()
            popen = subprocess.Popen(
                [sys.executable, "-m", "airflow", component],
                env=self._env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: every descendant can be attributed (getsid) and none gets our signals.
                start_new_session=True,
            )
        self._mains[component] = _Main(popen, launched_at)
        self._tracker.add_main(popen.pid, component)

    def _main(self, component: str) -> _Main:
        try:
            return self._mains[component]
        except KeyError:
            raise ValueError(f"{component!r} is not a component of {self!r}: {self.components}") from None

    def _wait_ready(self, components: Iterable[str], timeout_seconds: float) -> None:
        pending = list(components)
        deadline = time.monotonic() + timeout_seconds
        while pending:
            for component in list(pending):
                main = self._mains[component]
                if main.popen.poll() is not None:
                    raise ComponentExitedError(component, main.popen.returncode, self.log_tail(component))
                if self._is_ready(component, main):
                    pending.remove(component)
            if pending and time.monotonic() > deadline:
                raise WaitTimeoutError(f"{pending} to become ready", timeout_seconds, self.log_tails(10))
            if pending:
                time.sleep(0.2)

    def _is_ready(self, component: str, main: _Main) -> bool:
        try:
            if component == "api-server":
                self.api("GET", "/version", timeout_seconds=2)
                return True
            # A running job started after this launch: the health endpoint would also report a
            # previous, SIGKILLed incarnation as healthy until its heartbeat goes stale.
            jobs = self.api(
                "GET",
                "/jobs",
                params={
                    "job_type": _JOB_TYPES[component],
                    "job_state": "running",
                    "start_date_gte": main.launched_at.isoformat(),
                },
                timeout_seconds=2,
            )
        except ApiError:
            return False
        return bool(jobs["total_entries"])

    def _current_ti_ids(self, dag_id: str | None, run_id: str | None, task_id: str | None) -> set[str]:
        body: dict[str, Any] = {"page_limit": 100}
        if dag_id is not None:
            body["dag_ids"] = [dag_id]
        if run_id is not None:
            body["dag_run_ids"] = [run_id]
        if task_id is not None:
            body["task_ids"] = [task_id]
        answer = self.api("POST", "/dags/~/dagRuns/~/taskInstances/list", json_body=body)
        return {ti["id"] for ti in answer["task_instances"]}

    def _ti_path(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}"

    def _set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        self.api("PATCH", self._ti_path(dag_id, run_id, task_id), json_body={"new_state": state})

    def _wait_for_state(
        self,
        what: str,
        fetch: Callable[[], dict[str, Any]],
        wanted: frozenset[str],
        terminal: frozenset[str],
        timeout_seconds: float,
    ) -> dict[str, Any]:
        seen: list[Any] = []

        def probe() -> dict[str, Any] | None:
            record = fetch()
            state = record.get("state")
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in wanted:
                return record
            if state in terminal:
                raise DeploymentError(f"{what}, but it ended {state!r} (states seen: {seen})")
            return None

        try:
            return self.wait_for(what, probe, timeout_seconds=timeout_seconds)
        except WaitTimeoutError as exc:
            raise WaitTimeoutError(what, timeout_seconds, {"states seen": seen}) from exc


def _title(proc: psutil.Process) -> str:
    try:
        return process_title(proc)
    except psutil.Error:  # it vanished: it has no title any more
        return ""


def _log_line(entry: Any) -> str:
    """One structured log record from the REST API as a line of text."""
    if not isinstance(entry, dict):
        return str(entry)
    extras = {k: v for k, v in entry.items() if k not in ("timestamp", "level", "event", "logger")}
    fields = " ".join(f"{k}={v}" for k, v in extras.items())
    parts = [entry.get("timestamp"), entry.get("level"), entry.get("event"), fields]
    return " ".join(str(p) for p in parts if p)

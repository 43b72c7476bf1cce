"""Finding, classifying and killing every process an `AirflowDeployment` started.

Each component is started in its own session, and Airflow's descendants stay in it (task processes
only move to their own process *group*), so ``getsid(pid)`` names the component of any process, even
an orphan re-parented to init after its parent was SIGKILLed. A background poll also records children
by parent PID, for descendants that did start a new session (``start_new_session=True`` in Bash
hooks). The environment cannot be used as a marker: ``setproctitle`` overwrites
``/proc/<pid>/environ`` of every Airflow process that renames itself.

While a deployment runs, this process is a Linux "child subreaper": orphans of a killed component
re-parent to us instead of PID 1 and are reaped here. A container's PID 1 often never reaps, and they
would stay behind as zombies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

# Process titles Airflow 3.3 sets (setproctitle): LocalExecutor workers run the supervisor in-process and
# rename themselves after the task instance id; the forked task process renames itself after startup.
_SUPERVISOR_TITLE = re.compile(r"^airflow worker -- LocalExecutor(?: \[[^\]]*\])?: (?P<ti_id>[0-9a-f-]{36})$")
_IDLE_WORKER_TITLE = re.compile(r"^airflow worker -- LocalExecutor(?: \[[^\]]*\])?: <idle>$")
_TASK_TITLE = re.compile(r"^airflow worker -- (?P<ti_id>[0-9a-f-]{36})$")
# On a Celery worker, Celery titles its pool processes ("[celeryd: worker0@host:ForkPoolWorker-1]"); the
# one that takes a try runs the supervisor in-process under BaseExecutor.run_workload's default title,
# and forks the task process, which renames itself as above.
_CELERY_SUPERVISOR_TITLE = re.compile(r"^airflow supervisor: (?P<ti_id>[0-9a-f-]{36})$")
_CELERY_POOL_TITLE = re.compile(r"^\[celeryd: .*:ForkPoolWorker-\d+\]")
# The triggerer's trigger runner is a fork of the triggerer that never renames itself.
_TRIGGERER_TITLE = re.compile(r"\bairflow triggerer\b")
SERVE_LOGS_TITLE = "airflow serve-logs"

_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
_subreaper_lock = threading.Lock()
_subreaper_users = 0


def _use_subreaper(delta: int) -> None:
    """Count deployments that need this process to be a subreaper; set or clear the flag to match."""
    global _subreaper_users
    if not sys.platform.startswith("linux"):
        return
    with _subreaper_lock:
        before = _subreaper_users
        _subreaper_users = max(0, before + delta)
        if (before == 0) != (_subreaper_users == 0):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_CHILD_SUBREAPER, int(_subreaper_users > 0), 0, 0, 0)


@dataclass(frozen=True, slots=True)
class DeploymentProcess:
    """One live process of a deployment, as the OS sees it right now.

    ``component`` is the instance's name, e.g. ``"triggerer"``, ``"triggerer[1]"``, ``"postgres"``.
    ``role`` is ``"main"`` for the process the deployment started, ``"supervisor"`` and ``"task"`` for
    a running task instance's supervisor (a LocalExecutor worker or a Celery pool process) and its
    forked task process (``ti_id`` set), ``"idle-worker"`` (either executor's, waiting for work),
    ``"trigger-runner"`` (the triggerer's subprocess that runs the triggers' event loop),
    ``"serve-logs"``, or ``"other"`` (uvicorn, DAG parsing, PostgreSQL backends...).
    """

    pid: int
    ppid: int
    component: str
    role: str
    title: str
    ti_id: str | None = None


def process_title(proc: psutil.Process) -> str:
    """The title a process shows in ``ps`` (setproctitle pads argv with empty strings)."""
    return " ".join(part for part in proc.cmdline() if part)


def _classify(title: str) -> tuple[str, str | None]:
    """The role of a process that is not a main one, from its title alone."""
    if match := _SUPERVISOR_TITLE.match(title) or _CELERY_SUPERVISOR_TITLE.match(title):
        return "supervisor", match["ti_id"]
    if match := _TASK_TITLE.match(title):
        return "task", match["ti_id"]
    if _IDLE_WORKER_TITLE.match(title) or _CELERY_POOL_TITLE.match(title):
        return "idle-worker", None
    if title == SERVE_LOGS_TITLE:
        return "serve-logs", None
    if _TRIGGERER_TITLE.search(title):
        return "trigger-runner", None
    return "other", None


def is_alive(proc: psutil.Process) -> bool:
    """Running and not a zombie: a zombie is dead, it only waits for its parent to reap it."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass(slots=True)
class _Session:
    leader: psutil.Process
    component: str
    leader_died_at: float | None = None  # epoch seconds, when a poll first saw the leader gone


class ProcessTracker:
    """Remembers every process of the deployment ever seen, by ``psutil.Process`` (PID + start time).

    PIDs wrap quickly (``pid_max`` is 32768 on many machines), so identity is always the PID *and*
    the start time: psutil refuses to signal a process whose start time changed, and a session or
    parent PID that now belongs to someone else's process attributes nothing to us.
    """

    def __init__(self, *, poll_interval_seconds: float = 0.2) -> None:
        self._poll_interval_seconds = poll_interval_seconds
        self._lock = threading.Lock()
        self._sessions: dict[int, _Session] = {}
        # pid -> (process, component, is_main); entries leave once the process is dead and reaped.
        self._seen: dict[int, tuple[psutil.Process, str, bool]] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add_main(self, pid: int, component: str) -> None:
        """Track a process started with ``start_new_session=True``: its PID is its session id."""
        with self._lock, contextlib.suppress(psutil.Error):
            leader = psutil.Process(pid)
            self._sessions[pid] = _Session(leader, component)
            self._seen[pid] = (leader, component, True)
        self.poll()

    def start(self) -> None:
        _use_subreaper(+1)
        # Orphans can re-parent and fork again between two explicit polls; a background poll narrows
        # the window in which a short-lived parent's children could escape both session and parent checks.
        self._thread = threading.Thread(target=self._run, name="airflow-deployment-ps", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            self._reap()
            _use_subreaper(-1)

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_interval_seconds):
            self.poll()

    def poll(self) -> None:
        """Record new processes of our sessions and new children of processes already seen."""
        parents: dict[int, int] = {}
        for proc in psutil.process_iter(["ppid"]):
            parents[proc.pid] = proc.info["ppid"]
        now = time.time()
        with self._lock:
            for session in self._sessions.values():
                if session.leader_died_at is None and not session.leader.is_running():
                    session.leader_died_at = now
            pending = [pid for pid in parents if pid not in self._seen or not self._seen[pid][0].is_running()]
            changed = True
            while changed:  # children may be listed before their parents
                changed = False
                for pid in list(pending):
                    found = self._identify(pid, parents[pid])
                    if found is None:
                        continue
                    self._seen[pid] = (found[0], found[1], False)
                    pending.remove(pid)
                    changed = True
        self._reap()

    def _identify(self, pid: int, ppid: int) -> tuple[psutil.Process, str] | None:
        """The process and our component it belongs to, by session or by parent; None if not ours."""
        try:
            session = self._sessions.get(os.getsid(pid))
            parent = self._seen.get(ppid)
            if session is None and parent is None:
                return None  # the common case, decided without reading /proc
            proc = psutil.Process(pid)
            # A session id is its leader's PID: once the leader is gone the number can be reused, so
            # only members born before its death count (later ones can only be children of members).
            if session is not None and (
                session.leader_died_at is None or proc.create_time() <= session.leader_died_at
            ):
                return proc, session.component
            if parent is not None and parent[0].is_running():
                return proc, parent[1]
        except (OSError, psutil.Error):
            pass
        return None

    def _reap(self) -> None:
        """Reap dead orphans that re-parented to us (``subprocess`` reaps the mains); forget the dead."""
        me = os.getpid()
        with self._lock:
            candidates = list(self._seen.items())
        for pid, (proc, _, is_main) in candidates:
            try:
                if not proc.is_running():  # reaped already, or its PID was reused
                    with self._lock:
                        if self._seen.get(pid, (None,))[0] is proc:
                            del self._seen[pid]
                elif not is_main and proc.status() == psutil.STATUS_ZOMBIE and proc.ppid() == me:
                    os.waitpid(pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError):
                pass

    def alive(self, component: str | None = None) -> list[DeploymentProcess]:
        """Every tracked process that is still alive, optionally of one component only."""
        self.poll()
        with self._lock:
            tracked = list(self._seen.items())
        result = []
        for pid, (proc, owner, is_main) in tracked:
            if component is not None and owner != component:
                continue
            if not is_alive(proc):
                continue
            try:
                title = process_title(proc)
                ppid = proc.ppid()
            except psutil.Error:
                continue
            role, ti_id = ("main", None) if is_main else _classify(title)
            result.append(DeploymentProcess(pid, ppid, owner, role, title, ti_id))
        return result

    def process(self, pid: int) -> psutil.Process | None:
        """The tracked process with this PID, or None if it is not ours or already dead and reaped."""
        with self._lock:
            entry = self._seen.get(pid)
        return entry[0] if entry is not None else None

    def send(self, pids: Iterable[int], sig: signal.Signals) -> None:
        """Send ``sig`` to tracked processes only, by PID, skipping any that died or whose PID was reused."""
        for pid in pids:
            proc = self.process(pid)
            if proc is not None and is_alive(proc):
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)

    def wait_gone(self, pids: Iterable[int], timeout_seconds: float) -> list[int]:
        """Wait until the processes died (zombies count as dead); return the PIDs still alive."""
        deadline = time.monotonic() + timeout_seconds
        remaining = list(pids)
        while True:
            remaining = [pid for pid in remaining if (p := self.process(pid)) is not None and is_alive(p)]
            if not remaining or time.monotonic() >= deadline:
                return remaining
            time.sleep(0.05)

    def kill_all(self, pids: Iterable[int], *, timeout_seconds: float = 10.0) -> list[int]:
        """SIGKILL the given tracked processes and wait for them; return any that survived."""
        pids = list(pids)
        self.send(pids, signal.SIGKILL)
        return self.wait_gone(pids, timeout_seconds)


@dataclass(frozen=True, slots=True)
class TaskProcesses:
    """The processes running one task instance try, on the LocalExecutor or a Celery worker.

    ``supervisor_pid`` is the process that runs the supervisor (a LocalExecutor worker or a Celery
    pool process; ``None`` once it was killed: the task process is then an orphan, and keeps running).
    ``task_pid`` is the process it forked to run ``execute()``, ``None`` until then; ``task_started``
    turns True when that process started the task runner (it renamed itself). ``ti_id`` is the try's
    id, ``task_instance()["id"]``; ``component`` the instance whose processes they are
    (``"scheduler"`` with the LocalExecutor, ``"celery-worker[1]"``...).
    """

    ti_id: str
    supervisor_pid: int | None
    task_pid: int | None
    task_started: bool
    component: str = ""


def group_task_processes(procs: Iterable[DeploymentProcess]) -> list[TaskProcesses]:
    """Pair supervisors with their task processes by try id, from the roles their titles give.

    The task process starts as a fork of its supervisor, under the supervisor's title, before it
    renames itself: a child with its parent's try id is the task process either way.
    """
    procs = list(procs)
    supervisor_titled = {p.pid: p for p in procs if p.role == "supervisor"}
    entries: dict[str, dict[str, Any]] = {}
    for proc in procs:
        if proc.ti_id is None:
            continue
        entry = entries.setdefault(
            proc.ti_id, {"supervisor": None, "task": None, "started": False, "component": proc.component}
        )
        parent = supervisor_titled.get(proc.ppid)
        if proc.role == "task" or (parent is not None and parent.ti_id == proc.ti_id):
            entry["task"], entry["started"] = proc.pid, proc.role == "task"
        else:
            entry["supervisor"] = proc.pid
    return [
        TaskProcesses(ti_id, e["supervisor"], e["task"], e["started"], e["component"])
        for ti_id, e in sorted(entries.items())
    ]

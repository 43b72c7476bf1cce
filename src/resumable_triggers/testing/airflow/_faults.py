"""Striking an `AirflowDeployment`: finding the process to hit, and hitting it.

A fault is a signal to processes the deployment tracks, by PID: a crash (SIGKILL), a shutdown
(SIGTERM), or a freeze (SIGSTOP, until SIGCONT): a stalled VM, a frozen container, a long GC pause,
the way a triggerer's heartbeat goes stale without its process dying. A frozen process is resumed
before anything else is asked of it (a stopped process acts on no signal but SIGKILL), and the
deployment's ``stop()`` resumes everything first.

Finding the target: ``task_processes`` names the supervisor and task process of a try from their
process titles; ``component_of_job`` names the instance holding an Airflow job (a trigger's
``triggerer_job``), from the hostname each instance records in its jobs.

A deployment holds one ``Faults`` as ``deployment.faults``; it shares the deployment's process
tracker, launcher (for each instance's main process) and REST client, and keeps what it paused.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time

import psutil

from resumable_triggers.testing.airflow._errors import DeploymentError, UnknownJobError, WaitTimeoutError
from resumable_triggers.testing.airflow._launcher import Launcher
from resumable_triggers.testing.airflow._processes import (
    ProcessTracker,
    TaskProcesses,
    group_task_processes,
)
from resumable_triggers.testing.airflow._rest import AirflowRestClient
from resumable_triggers.testing.airflow._topology import JOB_TYPES, Topology

_STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, psutil.STATUS_ZOMBIE)


class Faults:
    """Finding targets in a deployment and striking them: ``deployment.faults.kill("triggerer")``."""

    def __init__(
        self, *, topology: Topology, launcher: Launcher, tracker: ProcessTracker, rest: AirflowRestClient
    ) -> None:
        self._topology = topology
        self._launcher = launcher
        self._tracker = tracker
        self._rest = rest
        self._paused: dict[str, set[int]] = {}  # instance name -> PIDs we SIGSTOPped, not resumed yet

    def task_processes(
        self, dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None
    ) -> list[TaskProcesses]:
        """Supervisor and task process of every running task instance try, from process titles.

        Airflow 3.3's LocalExecutor worker runs the supervisor in-process, titled
        ``airflow worker -- LocalExecutor: <ti id>``; on a Celery worker, the pool process that took
        the try runs it, titled ``airflow supervisor: <ti id>``. The task process it forks starts as a
        copy of it, then retitles itself ``airflow worker -- <ti id>``. With filters, REST names the
        ids of the *current* tries that match, so orphans of older tries are listed only without
        filters (their PIDs are also in ``task_tries()``).
        """
        found = group_task_processes(self._tracker.alive())
        if dag_id is None and run_id is None and task_id is None:
            return found
        wanted = self._rest.current_ti_ids(dag_id, run_id, task_id)
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
        return self._rest.wait_for(what, probe, timeout_seconds=timeout_seconds)

    def component_of_job(self, job_id: int) -> str:
        """The instance that registered Airflow job ``job_id``, e.g. ``"triggerer[1]"``.

        Pass a task instance's ``triggerer_job["id"]`` to find the triggerer holding its trigger.
        Jobs of earlier incarnations name the same instance. Raises ``UnknownJobError`` if the job
        does not exist or is not ours.
        """
        offset = 0
        while True:
            page = self._rest.api("GET", "/jobs", params={"order_by": "-id", "limit": 100, "offset": offset})
            jobs = page["jobs"]
            job = next((j for j in jobs if j["id"] == job_id), None)
            if job is not None or not jobs or jobs[-1]["id"] < job_id:
                break
            offset += len(jobs)
        if job is None:
            raise UnknownJobError(job_id, None, None)
        instance = self._topology.by_hostname(job.get("hostname") or "")
        if instance is None or JOB_TYPES.get(instance.component) != job.get("job_type"):
            raise UnknownJobError(job_id, job.get("hostname"), job.get("job_type"))
        return instance.name

    def kill(
        self,
        component: str,
        sig: signal.Signals = signal.SIGKILL,
        *,
        whole_tree: bool = False,
        wait: bool = True,
        timeout_seconds: float = 30.0,
    ) -> None:
        """Signal an instance's main process: a crash (SIGKILL) or a shutdown (SIGTERM).

        Its children are left alone, as when a process dies on a plain VM: LocalExecutor workers (and
        the tasks they supervise), serve-logs and PostgreSQL backends survive a SIGKILL as orphans.
        ``whole_tree=True`` signals every live process of the instance instead, like losing its
        container. Paused processes are resumed after the signal, so that it takes effect. With
        ``wait``, returns once the signalled processes are gone (a SIGTERMed triggerer takes ~10 s).
        """
        name = self._topology.instance(component).name
        main = self._launcher.main(name)
        pids = [p.pid for p in self._tracker.alive(name)] if whole_tree else [main.popen.pid]
        if main.popen.poll() is not None and not whole_tree:
            raise DeploymentError(f"{name} is not running (exit code {main.popen.returncode})")
        self._tracker.send(pids, sig)
        paused = self._paused.get(name, set())
        self._tracker.send([pid for pid in pids if pid in paused], signal.SIGCONT)
        paused.difference_update(pids)
        if not wait:
            return
        left = self._tracker.wait_gone(pids, timeout_seconds)
        with contextlib.suppress(subprocess.TimeoutExpired):
            main.popen.wait(timeout=1)  # reap it now, so that it is no zombie of ours
        if left:
            raise WaitTimeoutError(f"{name} processes to exit after {sig.name}", timeout_seconds, left)

    def pause(self, component: str, *, role: str | None = None, timeout_seconds: float = 10.0) -> list[int]:
        """Freeze an instance with SIGSTOP until ``resume``; return the PIDs frozen.

        By default the whole tree freezes, like a frozen container (children forked meanwhile are
        frozen too). ``role`` freezes only the processes of that role (`DeploymentProcess.role`),
        e.g. ``pause("triggerer[1]", role="trigger-runner")`` stalls the triggers' event loop while
        the triggerer's supervisor keeps heartbeating, and ``role="main"`` only the main process.
        Returns once every one of them is stopped (as ``/proc`` shows); raises DeploymentError if the
        instance has no live process of that role.
        """
        name = self._topology.instance(component).name
        frozen: set[int] = set()
        for _ in range(5):  # a process may fork between listing and stopping; go again until none did
            targets = [
                p.pid
                for p in self._tracker.alive(name)
                if role is None or p.role == role
                if p.pid not in frozen
            ]
            if not targets:
                break
            self._tracker.send(targets, signal.SIGSTOP)
            frozen.update(targets)
            if role is not None:
                break
        if not frozen:
            roles = sorted({p.role for p in self._tracker.alive(name)})
            raise DeploymentError(f"{name} has no live {role or 'process'} to pause; live roles: {roles}")
        self._paused.setdefault(name, set()).update(frozen)
        self._wait_stopped(name, frozen, timeout_seconds)
        return sorted(frozen)

    def resume(self, component: str) -> list[int]:
        """SIGCONT what ``pause`` froze in an instance; return those PIDs (still alive or not)."""
        name = self._topology.instance(component).name
        pids = sorted(self._paused.pop(name, set()))
        self._tracker.send(pids, signal.SIGCONT)
        return pids

    def paused(self) -> dict[str, list[int]]:
        """The PIDs each instance has frozen now (by ``pause``, not yet resumed)."""
        return {name: sorted(pids) for name, pids in self._paused.items() if pids}

    def resume_everything(self) -> None:
        """SIGCONT every live process of the deployment, paused or not: before a stop, since a stopped
        process acts on no signal but SIGKILL, and children forked into a frozen tree froze too."""
        self._tracker.send([p.pid for p in self._tracker.alive()], signal.SIGCONT)
        self._paused.clear()

    def _wait_stopped(self, name: str, pids: set[int], timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            running = []
            for pid in pids:
                proc = self._tracker.process(pid)
                with contextlib.suppress(psutil.Error):
                    if proc is not None and proc.status() not in (
                        psutil.STATUS_STOPPED,
                        psutil.STATUS_ZOMBIE,
                    ):
                        running.append(pid)
            if not running:
                return
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"{name} processes to stop after SIGSTOP", timeout_seconds, running)
            time.sleep(0.05)

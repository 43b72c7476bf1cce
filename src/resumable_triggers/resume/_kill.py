"""May a trigger's ``on_kill`` cancel its job? Decided from facts, never from Airflow's cancel message.

Airflow 3.3 calls ``on_kill`` when a user acts on a deferred task, *and* when a triggerer that lost its
heartbeat (a stall, a GC pause, a frozen container) wakes up to find its triggers reassigned: it
cancels every one of them with the user-action message (apache/airflow#73454). Obeying that message
kills healthy runs that another triggerer is watching. So the trigger looks before it cancels::

    the job is already finished (or being cancelled) ........ KEEP    nothing to cancel
    the task is success/failed/skipped/removed/... .......... CANCEL  a user stopped it, or it ended
                                                                      while the job still ran (orphan)
    the task is restarting (a running try was cleared) ...... CANCEL
    the task has no state (a deferred try was cleared) ...... CANCEL  the next try starts a new cycle
                                                                      and never adopts this job
    deferred / up for retry, and the last deferral .......... CANCEL  this job was left behind
      watched another job
    deferred / up for retry, on this job .................... KEEP    reassigned to another triggerer,
                                                                      or a retry will reconnect
    deferred, no watch marker ............................... KEEP    nothing proves it abandoned
      (or one written by a try older than the trigger's)              (a zombie try writes one too)
    scheduled / queued / running, unreadable, unknown ....... LOOK_AGAIN (a try is starting or
                                                                      resuming: its next step decides)

The *watch marker* is an XCom (``WATCH_MARKER_KEY``) that the operator pushes right before each
deferral, naming the try and the job it defers on. Airflow deletes a task's XComs when a new try
starts (not when a deferred try resumes), so the marker speaks for the latest deferral, with one
exception: a try the scheduler gave up may still be alive (a frozen worker, woken later, measured in
the HA matrix); it believes it holds the job and pushes a marker as its SIGTERM checkpoint, after the
current try's, and Airflow accepts a stale try's XCom. So a marker older than the trigger's own try
speaks for nobody, and counts as no marker.

A user's mark failed or mark success is decided twice: by the trigger's ``on_kill`` when a triggerer
runs it, and by the API server's listener (``_listener``), which covers the trigger no triggerer runs
(not picked up yet, or its triggerer died). Whichever reads the job second finds it being cancelled.

``LOOK_AGAIN`` is retried within ``[triggerer] on_kill_timeout``; if the picture never settles the job
keeps running and the trigger logs an error naming it: a run left running costs less than a healthy
run killed.

The worker side asks the same question after a SIGTERM (``after_sigterm``): its supervisor also
SIGTERMs a try whose heartbeat was refused, e.g. a frozen worker whose try the scheduler gave up while
the next try already watches the same job::

    running, or no state (unreadable counts as running) ..... CHECKPOINT  a worker shutdown: defer
    success/failed/skipped/removed/..., restarting .......... USER_KILL   cancel when cancel_on_kill
    queued/scheduled/deferred/up for retry/... .............. SUPERSEDED  the scheduler moved on from
                                                                          this try: neither cancel the
                                                                          job nor defer on it
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from resumable_triggers.resume._record import ExternalId

__all__ = [
    "WATCH_MARKER_KEY",
    "KillVerdict",
    "SigtermVerdict",
    "TaskView",
    "Verdict",
    "WatchMarker",
    "after_sigterm",
    "kill_verdict",
    "task_state_key",
]

WATCH_MARKER_KEY = "resumable_triggers.watch"
"""XCom key of the watch marker. Stored in Airflow's database: renaming it blinds deferred tasks."""

# States in which nobody will ever watch the job again: whoever put the task there (a user, a
# timeout, the scheduler giving a zombie up for good), a job still running now is an orphan.
_FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
# States in which the task's current owner of the job is known from the marker: a trigger watches it,
# or the retry will reconnect to it.
_HANDED_ON = frozenset({"deferred", "up_for_retry", "up_for_reschedule"})
_CLEARED_WHILE_RUNNING = "restarting"


class SigtermVerdict(str, enum.Enum):
    CHECKPOINT = "checkpoint"
    USER_KILL = "user_kill"
    SUPERSEDED = "superseded"


class KillVerdict(str, enum.Enum):
    CANCEL = "cancel"
    KEEP = "keep"
    LOOK_AGAIN = "look_again"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: KillVerdict
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchMarker:
    """What the latest deferral of a task watched: pushed as an XCom before each ``defer()``."""

    try_number: int
    external_id: ExternalId

    def to_xcom(self) -> dict[str, Any]:
        return {"try_number": self.try_number, "external_id": self.external_id}

    @classmethod
    def from_xcom(cls, value: object) -> WatchMarker | None:
        """The marker, or None for a value that is no marker (absent, foreign, corrupt)."""
        if not isinstance(value, Mapping):
            return None
        try_number, external_id = value.get("try_number"), value.get("external_id")
        if not isinstance(try_number, int) or not isinstance(external_id, (int, str)):
            return None
        return cls(try_number=try_number, external_id=external_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """How Airflow sees the task right now: the current try's state (None: no state) and marker."""

    state: str | None
    marker: WatchMarker | None


def kill_verdict(
    *,
    external_id: ExternalId,
    job_active: bool | None,
    view: TaskView | None,
    watching_try: int | None = None,
) -> Verdict:
    """Whether ``on_kill`` may cancel ``external_id``. ``job_active`` None: its status could not be
    read; ``view`` None: Airflow could not be asked; ``watching_try``: the try whose deferral the
    killed trigger serves (None: unknown, every marker counts)."""
    if job_active is False:
        return Verdict(
            KillVerdict.KEEP, f"job {external_id} already finished, or is finishing: nothing to cancel"
        )
    if view is None:
        return Verdict(KillVerdict.LOOK_AGAIN, "the task's state could not be read")
    state, marker = view.state, view.marker
    if marker is not None and watching_try is not None and marker.try_number < watching_try:
        marker = None  # written by an older try that was still alive: see the module docstring
    if state in _FINISHED:
        return Verdict(KillVerdict.CANCEL, f"the task is {state}: a user stopped it, or it ended")
    if state == _CLEARED_WHILE_RUNNING:
        return Verdict(KillVerdict.CANCEL, "a user cleared the running task")
    if state is None:
        return Verdict(KillVerdict.CANCEL, "a user cleared the task: its next try starts afresh")
    if state in _HANDED_ON:
        if marker is None:
            return Verdict(KillVerdict.KEEP, f"the task is {state} and no deferral names another job")
        if marker.external_id != external_id:
            return Verdict(
                KillVerdict.CANCEL,
                f"try {marker.try_number} deferred on job {marker.external_id}: this job was left behind",
            )
        return Verdict(
            KillVerdict.KEEP,
            f"the task is {state} on this job (try {marker.try_number}): the trigger was reassigned to "
            "another triggerer, or a retry reconnects",
        )
    return Verdict(KillVerdict.LOOK_AGAIN, f"the task is {state}: waiting for its next step")


def after_sigterm(state: str | None) -> SigtermVerdict:
    """What a worker holding a job does after a SIGTERM, from how the API server sees the task.

    States are keyed by task, not by try: ``running`` may be a newer try's, which is why a shutdown
    checkpoint is only ever attempted (the API server refuses a stale try's deferral)."""
    if state in _FINISHED or state == _CLEARED_WHILE_RUNNING:
        return SigtermVerdict.USER_KILL
    if state is None or state == "running":
        return SigtermVerdict.CHECKPOINT
    return SigtermVerdict.SUPERSEDED


def task_state_key(task_id: str, map_index: int | None) -> str:
    """The key of a task instance in Airflow's ``get_task_states`` answer (mapped: ``<task>_<index>``)."""
    return task_id if map_index is None or map_index < 0 else f"{task_id}_{map_index}"


def state_seen_by_api_server(ti: Any, log: Any) -> str | None:
    """How the API server sees the task of ``ti`` (a worker's ``RuntimeTaskInstance``) after a SIGTERM:
    ``running`` means a worker shutdown. An unreadable state counts as ``running``: any doubt must
    not cancel a healthy job."""
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id])
        state = states.get(ti.run_id, {}).get(task_state_key(ti.task_id, ti.map_index))
    except Exception as exc:  # noqa: BLE001 - any doubt must not cancel a healthy job
        log.warning("could not read the task's state (%s); treating SIGTERM as a shutdown", exc)
        return "running"
    log.info("API server sees this task as %s", state)
    return None if state is None else str(state)

"""What the run page shows, as typed values read off the Jobs API's own JSON.

The page (`_page`) never reads run records: it reads the ``runs/get`` body the API would answer
(``render_run`` with the repair history), so the page and the API cannot disagree about a run::

    EmulatedWorkspace ──render_run──> runs/get JSON ──from_api──> RunView ──> HTML (`_page`)
                                                                  ├── tasks: TaskView (state, phases)
                                                                  └── repairs: RepairView
    newest runs ──render_run(with_tasks=False)──> RunRow, one per line of the runs list

A ``Phases`` value is one task's (or attempt's) timeline in epoch milliseconds; while it is active the
API reports no durations, so the page draws it up to ``now_ms``. Readers run under the emulator's lock
(``RequestPath.read``) and change nothing: opening the page is not API traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ErrorReply
from ._render import render_run
from ._store import EmulatedWorkspace

# The runs list shows this many of the newest runs; a load test's 10,000 foreign runs would make a
# page nobody reads.
RUNS_LIST_LIMIT = 100


@dataclass(frozen=True, slots=True)
class StateView:
    """A run's or task's ``state`` object."""

    life_cycle: str
    result: str | None
    message: str

    @classmethod
    def from_api(cls, state: Mapping[str, Any]) -> StateView:
        return cls(
            life_cycle=str(state.get("life_cycle_state", "UNKNOWN")),
            result=state.get("result_state"),
            message=str(state.get("state_message") or ""),
        )

    @property
    def label(self) -> str:
        """What a person wants to read first: the result once there is one, else the life-cycle state."""
        return self.result or self.life_cycle

    @property
    def active(self) -> bool:
        return self.life_cycle in (
            "QUEUED",
            "PENDING",
            "RUNNING",
            "TERMINATING",
            "BLOCKED",
            "WAITING_FOR_RETRY",
        )


@dataclass(frozen=True, slots=True)
class Phases:
    """One timeline, in epoch milliseconds; the durations are 0 and ``end_ms`` is 0 while active."""

    start_ms: int
    setup_ms: int
    execution_ms: int
    cleanup_ms: int
    end_ms: int

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Phases:
        return cls(
            start_ms=int(body.get("start_time") or 0),
            setup_ms=int(body.get("setup_duration") or 0),
            execution_ms=int(body.get("execution_duration") or 0),
            cleanup_ms=int(body.get("cleanup_duration") or 0),
            end_ms=int(body.get("end_time") or 0),
        )

    def end_or(self, now_ms: int) -> int:
        """Where the timeline ends: its end, or ``now_ms`` while it is still going."""
        return self.end_ms or max(now_ms, self.start_ms)


@dataclass(frozen=True, slots=True)
class TaskView:
    task_key: str
    run_id: int
    attempt_number: int
    state: StateView
    phases: Phases

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> TaskView:
        return cls(
            task_key=str(body.get("task_key", "")),
            run_id=int(body["run_id"]),
            attempt_number=int(body.get("attempt_number") or 0),
            state=StateView.from_api(body.get("state") or {}),
            phases=Phases.from_api(body),
        )


@dataclass(frozen=True, slots=True)
class RepairView:
    """One ``repair_history`` entry: the original attempt, or a repair of some of the tasks."""

    kind: str  # "ORIGINAL" or "REPAIR"
    repair_id: int | None
    start_ms: int
    end_ms: int
    state: StateView
    task_run_ids: tuple[int, ...]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> RepairView:
        return cls(
            kind=str(body.get("type", "ORIGINAL")),
            repair_id=body.get("id"),
            start_ms=int(body.get("start_time") or 0),
            end_ms=int(body.get("end_time") or 0),
            state=StateView.from_api(body.get("state") or {}),
            task_run_ids=tuple(int(i) for i in body.get("task_run_ids", ())),
        )


@dataclass(frozen=True, slots=True)
class RunView:
    """One run as its page shows it. ``focus_run_id``: the id the link named (a task run's id names
    its parent run's page, with that task picked out)."""

    run_id: int
    job_id: int
    run_name: str
    run_type: str
    creator: str
    state: StateView
    phases: Phases
    tasks: tuple[TaskView, ...]
    repairs: tuple[RepairView, ...]
    page_url: str
    focus_run_id: int
    now_ms: int

    @classmethod
    def from_api(cls, body: Mapping[str, Any], *, focus_run_id: int, now_ms: int) -> RunView:
        return cls(
            run_id=int(body["run_id"]),
            job_id=int(body.get("job_id") or 0),
            run_name=str(body.get("run_name") or ""),
            run_type=str(body.get("run_type") or ""),
            creator=str(body.get("creator_user_name") or ""),
            state=StateView.from_api(body.get("state") or {}),
            phases=Phases.from_api(body),
            tasks=tuple(TaskView.from_api(t) for t in body.get("tasks", ())),
            repairs=tuple(RepairView.from_api(r) for r in body.get("repair_history", ())),
            page_url=str(body.get("run_page_url") or ""),
            focus_run_id=focus_run_id,
            now_ms=now_ms,
        )

    @property
    def end_ms(self) -> int:
        """Where the run's timeline ends: ``now_ms`` while it is active, else its last task's end."""
        if self.state.active:
            return max(self.now_ms, self.phases.start_ms)
        return max(self.phases.end_ms, *(t.phases.end_ms for t in self.tasks), self.phases.start_ms)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One line of the workspace's runs list."""

    run_id: int
    job_id: int
    run_name: str
    state: StateView
    start_ms: int
    creator: str

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> RunRow:
        return cls(
            run_id=int(body["run_id"]),
            job_id=int(body.get("job_id") or 0),
            run_name=str(body.get("run_name") or ""),
            state=StateView.from_api(body.get("state") or {}),
            start_ms=int(body.get("start_time") or 0),
            creator=str(body.get("creator_user_name") or ""),
        )


@dataclass(frozen=True, slots=True)
class RunsView:
    """The newest runs of the workspace (at most ``RUNS_LIST_LIMIT``), and how many it holds."""

    rows: Sequence[RunRow]
    total: int


def read_run(ws: EmulatedWorkspace, run_id: int, now: float, page_url: str) -> RunView | None:
    """The page of the run ``run_id`` names (its parent's, for a task run), or None: no such run."""
    try:
        run = ws.find(run_id, now)
    except ErrorReply:  # the API's "Run N does not exist." (never submitted, deleted or expired)
        return None
    body = render_run(run, now, page_url, with_history=True)
    return RunView.from_api(body, focus_run_id=run_id, now_ms=round(now * 1000))


def read_runs(ws: EmulatedWorkspace, now: float, page_url: str) -> RunsView:
    newest = ws.newest_first()
    rows = [RunRow.from_api(render_run(r, now, page_url, with_tasks=False)) for r in newest[:RUNS_LIST_LIMIT]]
    return RunsView(rows=tuple(rows), total=len(newest))

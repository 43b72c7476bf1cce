"""The campaign plan: a pure, seeded function of ``(seed, minutes, topology)``.

A plan holds everything a campaign does, decided before anything starts: the generated DAGs and their
tasks, when each DAG run is triggered, and when each fault and user action strikes. It is a typed,
JSON-serialisable value (``to_json`` / ``from_json``), so a recorded plan can be replayed exactly
(``--replay``). Only ``random.Random(seed)`` is consulted: the same seed gives the same plan.

Moments are seconds from the campaign's start. Faults overlap on purpose: a triggerer may be frozen
while the emulator answers 429s and a task process is SIGKILLed.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Topology = Literal["single", "ha"]
Operator = Literal["submit_run", "run_now"]
# How the emulated run ends: its result, or a run longer than the task's execution_timeout.
Outcome = Literal["success", "fail_then_succeed", "always_fail", "timeout"]
UserActionKind = Literal["mark_failed", "mark_success", "clear"]

PLAN_VERSION = 1
# Signals for processes of the deployment; "sigstop" is SIGSTOP, then SIGCONT after duration_seconds.
SIGNAL_KINDS = ("sigkill", "sigterm", "sigstop")
# Emulator faults, as its control surface names them (``inject_fault`` kinds), plus a 429 storm
# (``set_rate_limit``) and a restart from its state file.
EMULATOR_KINDS = ("storm_429", "http_error", "drop", "lose_response", "latency", "restart")
TASK_TARGETS = ("task-process", "supervisor")
SINGLE_COMPONENTS = ("scheduler", "triggerer", "api-server", "dag-processor")
HA_COMPONENTS = (
    "scheduler[0]",
    "scheduler[1]",
    "triggerer[0]",
    "triggerer[1]",
    "api-server",
    "dag-processor",
    "postgres",
    "redis",
    "celery-worker",
)
EMULATOR_ENDPOINTS = ("runs/get", "runs/submit", "run-now", "runs/cancel", None)
# The campaign triggers DAG runs in the first part of its time, then lets everything settle.
ACTIVE_SHARE = 0.7


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One generated task. ``map_count`` > 0 makes it a mapped task (``.expand``) of that many
    instances; ``execution_timeout_seconds`` is set for ``outcome="timeout"`` only."""

    task_id: str
    operator: Operator
    deferrable: bool
    run_seconds: float
    outcome: Outcome
    retries: int
    map_count: int = 0
    execution_timeout_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class DagSpec:
    dag_id: str
    tasks: tuple[TaskSpec, ...]


@dataclass(frozen=True, slots=True)
class DagRunSpec:
    at_seconds: float
    dag_id: str
    run_id: str


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault at ``at_seconds``.

    ``target``: an instance name (``"triggerer"``, ``"postgres"``...), ``"task-process"`` or
    ``"supervisor"`` (``pick`` chooses among the live ones at that moment), or ``"emulator"``.
    ``kind``: one of ``SIGNAL_KINDS`` for processes, ``EMULATOR_KINDS`` for the emulator.
    ``duration_seconds``: how long a SIGSTOP, a storm or a killed component's downtime lasts.
    ``count``/``endpoint``/``status``: for emulator faults (requests affected, which, what status).
    """

    at_seconds: float
    target: str
    kind: str
    duration_seconds: float = 0.0
    pick: int = 0
    count: int = 0
    endpoint: str | None = None
    status: int = 503


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A user action on one (unmapped) task instance at ``at_seconds``."""

    at_seconds: float
    action: UserActionKind
    dag_id: str
    run_id: str
    task_id: str


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    minutes: float
    topology: Topology
    dags: tuple[DagSpec, ...]
    dag_runs: tuple[DagRunSpec, ...]
    faults: tuple[FaultSpec, ...]
    actions: tuple[ActionSpec, ...]
    version: int = PLAN_VERSION

    @property
    def active_seconds(self) -> float:
        return self.minutes * 60 * ACTIVE_SHARE

    def dag(self, dag_id: str) -> DagSpec:
        return next(d for d in self.dags if d.dag_id == dag_id)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Plan:
        if raw.get("version") != PLAN_VERSION:
            raise ValueError(
                f"plan version {raw.get('version')!r}; this resumable-triggers reads {PLAN_VERSION}"
            )
        return cls(
            seed=int(raw["seed"]),
            minutes=float(raw["minutes"]),
            topology=raw["topology"],
            dags=tuple(DagSpec(d["dag_id"], tuple(TaskSpec(**t) for t in d["tasks"])) for d in raw["dags"]),
            dag_runs=tuple(DagRunSpec(**r) for r in raw["dag_runs"]),
            faults=tuple(FaultSpec(**f) for f in raw["faults"]),
            actions=tuple(ActionSpec(**a) for a in raw["actions"]),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)


def make_plan(*, seed: int, minutes: float, topology: Topology = "single") -> Plan:
    """The campaign of ``seed``: ``minutes`` long on ``topology``. Pure: same arguments, same plan."""
    if minutes <= 0:
        raise ValueError(f"minutes={minutes}; a campaign lasts more than 0 minutes")
    if topology not in ("single", "ha"):
        raise ValueError(f"topology={topology!r}; choose 'single' or 'ha'")
    rng = random.Random(seed)
    dags = tuple(_dag(rng, index) for index in range(3))
    active = minutes * 60 * ACTIVE_SHARE
    # 2.5 DAG runs a minute for the first 3 minutes, then 1 a minute: on a shared 2-core machine
    # more than that piles up queued tries faster than four worker slots start them.
    run_count = max(2, round(min(minutes, 3.0) * 2.5 + max(0.0, minutes - 3.0)))
    dag_runs = tuple(
        DagRunSpec(
            at_seconds=round(active * index / run_count + rng.uniform(0, 3), 2),
            dag_id=dags[index % len(dags)].dag_id,
            run_id=f"chaos-{seed}-{index:03d}",
        )
        for index in range(run_count)
    )
    faults = tuple(sorted(_faults(rng, active, topology), key=lambda f: f.at_seconds))
    actions = tuple(sorted(_actions(rng, dags, dag_runs), key=lambda a: a.at_seconds))
    return Plan(seed, float(minutes), topology, dags, dag_runs, faults, actions)


def _dag(rng: random.Random, index: int) -> DagSpec:
    tasks = []
    for t in range(rng.randint(3, 4)):
        operator: Operator = "run_now" if rng.random() < 0.3 else "submit_run"
        outcome: Outcome = rng.choices(
            ("success", "fail_then_succeed", "always_fail", "timeout"), weights=(6, 2, 1, 1)
        )[0]
        deferrable = rng.random() < 0.8
        # Runs of 10 s and more: Airflow fails a resumed try whose trigger fired within ~1 s of deferring.
        run_seconds = float(rng.choice((10, 15, 20, 30, 45, 60) if deferrable else (10, 15, 20)))
        retries = rng.choice((2, 3, 4))
        timeout = None
        if outcome == "timeout":
            timeout = float(rng.choice((8, 12)))
            run_seconds, retries = max(run_seconds, timeout + 20), 1
        elif outcome == "always_fail":
            # Every try fails: short runs and few retries, or it outlasts the campaign.
            run_seconds, retries = 10.0, 1
        tasks.append(
            TaskSpec(
                task_id=f"t{t}_{operator}",
                operator=operator,
                deferrable=deferrable,
                run_seconds=run_seconds,
                outcome=outcome,
                retries=retries,
                map_count=rng.choice((2, 3)) if t == 0 else 0,
                execution_timeout_seconds=timeout,
            )
        )
    return DagSpec(f"chaos_dag_{index}", tuple(tasks))


def _faults(rng: random.Random, active: float, topology: Topology) -> list[FaultSpec]:
    components = SINGLE_COMPONENTS if topology == "single" else HA_COMPONENTS
    found: list[FaultSpec] = []
    # About one fault every 12 s of the active window, the first after Airflow ran something.
    count = max(4, round(active / 12))
    for _ in range(count):
        at = round(rng.uniform(min(15.0, active / 3), active), 2)
        family = rng.choices(("task", "component", "emulator"), weights=(4, 3, 4))[0]
        if family == "task":
            kind = rng.choice(SIGNAL_KINDS)
            found.append(
                FaultSpec(
                    at,
                    rng.choice(TASK_TARGETS),
                    kind,
                    duration_seconds=rng.choice((3.0, 8.0)) if kind == "sigstop" else 0.0,
                    pick=rng.randrange(1000),
                )
            )
        elif family == "component":
            kind = rng.choice(SIGNAL_KINDS)
            down = rng.choice((2.0, 5.0, 10.0)) if kind != "sigstop" else rng.choice((3.0, 8.0, 15.0))
            found.append(FaultSpec(at, rng.choice(components), kind, duration_seconds=down))
        else:
            kind = rng.choices(EMULATOR_KINDS, weights=(2, 2, 2, 2, 1, 1))[0]
            endpoint = rng.choice(EMULATOR_ENDPOINTS)
            found.append(
                FaultSpec(
                    at,
                    "emulator",
                    kind,
                    duration_seconds=rng.choice((5.0, 10.0, 20.0)) if kind == "storm_429" else 2.0,
                    count=rng.randint(1, 6),
                    endpoint=None if kind in ("storm_429", "restart") else endpoint,
                    status=rng.choice((500, 502, 503)) if kind == "http_error" else 503,
                )
            )
    return found


def _actions(
    rng: random.Random, dags: tuple[DagSpec, ...], dag_runs: tuple[DagRunSpec, ...]
) -> list[ActionSpec]:
    found = []
    kinds: tuple[UserActionKind, ...] = ("mark_failed", "mark_success", "clear")
    for dag_run in dag_runs:
        if rng.random() >= 0.4:
            continue
        unmapped = [t for t in next(d for d in dags if d.dag_id == dag_run.dag_id).tasks if t.map_count == 0]
        task = rng.choice(unmapped)
        # While the run is likely active: a DAG run's first runs are submitted ~20 s after it was
        # triggered on a loaded machine; before the run ends.
        at = dag_run.at_seconds + rng.uniform(15.0, 20.0 + task.run_seconds * 0.8)
        found.append(
            ActionSpec(round(at, 2), rng.choice(kinds), dag_run.dag_id, dag_run.run_id, task.task_id)
        )
    return found

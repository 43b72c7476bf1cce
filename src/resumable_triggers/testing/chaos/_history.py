"""The history of a campaign: everything observed, on one timeline (wall-clock seconds).

The runner records it; the checker reads nothing else. Every record is a frozen dataclass and the
whole history is JSON (``to_json`` / ``from_json``), so a history can be saved with ``--json`` and
checked again, or built by hand in a unit test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def ti_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    return f"{dag_id}|{run_id}|{task_id}|{map_index}"


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One API request the emulator logged. ``run_id`` is set only when the request was applied."""

    time: float
    method: str
    endpoint: str
    status: int | None
    run_id: int | None = None
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One emulated Databricks run, as last seen. ``ti`` is the task instance its identity names
    (``ti_key``), None for a run that is not the campaign's; ``end`` None while it is active."""

    run_id: int
    ti: str | None
    start: float
    end: float | None
    life_cycle_state: str
    result_state: str | None = None


@dataclass(frozen=True, slots=True)
class TiSample:
    """A task instance's state when the runner saw it change."""

    time: float
    ti: str
    state: str | None
    try_number: int
    end_date: float | None = None


@dataclass(frozen=True, slots=True)
class TryRecord:
    """One try of a task instance, as ``/tries`` reports it at the end."""

    ti: str
    try_number: int
    state: str | None
    start: float | None
    end: float | None


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault the runner injected: ``time`` it struck, ``end_time`` it was over (restarted, resumed,
    storm lifted). ``detail`` names the process or request kind; ``ok`` False if it could not strike."""

    time: float
    end_time: float
    target: str
    kind: str
    detail: str = ""
    ok: bool = True


@dataclass(frozen=True, slots=True)
class ActionEvent:
    """A user action through the REST API, from the request (``time``) to its answer (``end_time``).

    ``ok`` False: Airflow refused it, or never answered; ``answered`` False tells the second case,
    where it may still have been applied (a frozen API server serves its backlog when it resumes).
    """

    time: float
    end_time: float
    action: str
    ti: str
    ok: bool = True
    detail: str = ""
    answered: bool = True


@dataclass(frozen=True, slots=True)
class History:
    seed: int
    started: float
    ended: float
    requests: tuple[RequestEvent, ...] = ()
    runs: tuple[RunRecord, ...] = ()
    samples: tuple[TiSample, ...] = ()
    tries: tuple[TryRecord, ...] = ()
    faults: tuple[FaultEvent, ...] = ()
    actions: tuple[ActionEvent, ...] = ()
    xcom_run_ids: Mapping[str, Any] = field(default_factory=dict)  # ti -> the run_id XCom
    timeouts: Mapping[str, float] = field(default_factory=dict)  # "dag_id|task_id" -> execution_timeout
    settled: bool = True

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> History:
        return cls(
            seed=int(raw["seed"]),
            started=float(raw["started"]),
            ended=float(raw["ended"]),
            requests=tuple(RequestEvent(**r) for r in raw.get("requests", ())),
            runs=tuple(RunRecord(**r) for r in raw.get("runs", ())),
            samples=tuple(TiSample(**s) for s in raw.get("samples", ())),
            tries=tuple(TryRecord(**t) for t in raw.get("tries", ())),
            faults=tuple(FaultEvent(**f) for f in raw.get("faults", ())),
            actions=tuple(ActionEvent(**a) for a in raw.get("actions", ())),
            xcom_run_ids=dict(raw.get("xcom_run_ids", {})),
            timeouts={str(k): float(v) for k, v in raw.get("timeouts", {}).items()},
            settled=bool(raw.get("settled", True)),
        )

    def task_instances(self) -> list[str]:
        """Every task instance the history mentions, sorted."""
        seen = {s.ti for s in self.samples} | {t.ti for t in self.tries} | {a.ti for a in self.actions}
        seen |= {r.ti for r in self.runs if r.ti is not None}
        return sorted(seen)

"""One real Airflow, one emulator process, the three DAGs one after another; what they left behind
turned into `ImplementationResult`s.

The emulator runs in its own process (the Airflow connection ``databricks_default`` points at it),
Airflow with the LocalExecutor (SQLite or a PostgreSQL of its own), ``tasks + 2`` worker slots so no
task waits for one, and no cap per DAG below that. After a warm-up DAG has put every worker to work
once, the implementations take turns on the same deployment, each DAG run alone, so none shares the
machine with another's tasks; or, with ``together``, run at once (``3 * tasks + 2`` slots), so that a
load that varies over time weighs on each alike. Meanwhile a
background thread samples the deployment's processes (`ProcessSampler`); once all three are done,
the bench reads the task instances and the audit log over REST and the runs from the emulator.
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumable_triggers._bench._slots._dag import (
    DAG_IDS,
    OPERATORS,
    TASK_ID,
    WARMUP_DAG_ID,
    dag_file,
    run_name,
    warmup_file,
)
from resumable_triggers._bench._slots._results import (
    IMPLEMENTATIONS,
    Attempt,
    ImplementationResult,
    Percentiles,
    SlotStats,
)
from resumable_triggers._bench._slots._timeline import (
    AuditEvent,
    Sample,
    SeenProcess,
    audit_segments,
    contains,
    process_segments,
)
from resumable_triggers.testing import EmulatorProcess, airflow_connection
from resumable_triggers.testing.airflow import AirflowDeployment, AirflowRestClient
from resumable_triggers.testing.airflow._processes import group_task_processes


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotsSettings:
    """``tasks`` mapped tasks per implementation, each a run of ``run_seconds`` polled every
    ``poll_seconds``; processes sampled every ``sample_seconds``; ``database``: sqlite or postgres."""

    tasks: int
    run_seconds: float
    poll_seconds: int
    sample_seconds: float = 0.2
    database: str = "postgres"
    order: tuple[str, ...] = IMPLEMENTATIONS  # the turns the implementations take
    together: bool = False  # all three DAG runs at once instead of in turns

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.run_seconds <= 0 or self.poll_seconds < 1 or self.sample_seconds <= 0:
            raise ValueError(
                "bench-slots needs --tasks >= 1, --run-seconds > 0, --poll-seconds >= 1 (the provider "
                f"takes whole seconds) and --sample-seconds > 0; got {self}"
            )
        if sorted(self.order) != sorted(IMPLEMENTATIONS):
            raise ValueError(f"--order must name each of {', '.join(IMPLEMENTATIONS)} once, not {self.order}")
        if self.database not in ("sqlite", "postgres"):
            raise ValueError(f"--database must be sqlite or postgres, not {self.database!r}")

    @property
    def slots(self) -> int:
        """Worker slots (the LocalExecutor's parallelism): every task that runs at once, and some."""
        return (3 if self.together else 1) * self.tasks + 2

    @property
    def phase_timeout_seconds(self) -> float:
        """Generous (it only bounds a failure): the run, a few polls, the triggerer's start-up and
        every task's two starts on a busy machine."""
        return self.run_seconds + 10 * self.poll_seconds + 300 + 5 * self.tasks


class ProcessSampler:
    """Samples the deployment's task processes from a daemon thread until ``stop()``."""

    def __init__(self, deployment: AirflowDeployment, interval_seconds: float) -> None:
        self._deployment = deployment
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-slots-sampler", daemon=True)
        self.samples: list[Sample] = []

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            t = time.time()
            seen: list[SeenProcess] = []
            # The harness pairs each try's supervisor with its task process, also in the instant after
            # the fork when both still carry the supervisor's title.
            for tp in group_task_processes(self._deployment.processes()):
                if tp.supervisor_pid is not None:
                    seen.append(SeenProcess(tp.ti_id, "supervisor", tp.supervisor_pid))
                if tp.task_pid is not None:
                    seen.append(SeenProcess(tp.ti_id, "task", tp.task_pid))
            self.samples.append(Sample(t, tuple(seen)))
            self._stopping.wait(max(0.0, self._interval - (time.time() - t)))


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.datetime.fromisoformat(iso).timestamp()


def _paged(rest: AirflowRestClient, path: str, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        answer = rest.api("GET", path, params={**params, "limit": 100, "offset": len(out)})
        out += answer[key]
        if not answer[key] or len(out) >= answer["total_entries"]:
            return out


def run_slots(settings: SlotsSettings, workdir: Path) -> list[ImplementationResult]:
    """Run the three DAGs on a fresh deployment whose home is ``workdir/airflow`` (task logs and
    component logs stay there); return one result per implementation, ours first."""
    dags = workdir / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "bench_slots.py").write_text(
        dag_file(tasks=settings.tasks, run_seconds=settings.run_seconds, poll_seconds=settings.poll_seconds)
    )
    (dags / "bench_slots_warmup.py").write_text(warmup_file(slots=settings.slots))
    env = {
        "AIRFLOW__CORE__PARALLELISM": str(settings.slots),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.slots),
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": str(max(128, settings.slots)),
        "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": str(max(16, settings.slots)),
        # Every try parses the DAG file first; tasks starting at once on a busy machine took over the
        # default 30 s, and a try that times out is rescheduled: a third segment, not a slower one.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
    }
    runs: dict[str, str] = {}
    wall: dict[str, float] = {}
    with EmulatorProcess(run_seconds=settings.run_seconds) as emu:
        connections = {"databricks_default": airflow_connection(emu.url, emu.token)}
        with AirflowDeployment(
            dags_folder=dags,
            connections=connections,
            env=env,
            database=settings.database,
            home=workdir / "airflow",
        ) as af:
            for dag_id in (*DAG_IDS.values(), WARMUP_DAG_ID):
                af.rest.wait_for_dag(dag_id, timeout_seconds=120)
            print(f"bench-slots: warming up {settings.slots} worker slots...", file=sys.stderr, flush=True)
            warmup = af.rest.trigger_dag_run(WARMUP_DAG_ID)
            af.rest.wait_for_dag_run_state(
                WARMUP_DAG_ID, warmup, states={"success"}, timeout_seconds=settings.phase_timeout_seconds
            )
            with ProcessSampler(af, settings.sample_seconds) as sampler:
                # Together: all three at once, so that a load that varies over time (another job on
                # the machine) hits each alike; otherwise each in turn, alone on the deployment.
                turns = [settings.order] if settings.together else [(i,) for i in settings.order]
                for turn in turns:
                    print(
                        f"bench-slots: {' + '.join(turn)}, {settings.tasks} tasks each...",
                        file=sys.stderr,
                        flush=True,
                    )
                    started = time.monotonic()
                    for implementation in turn:
                        runs[implementation] = af.rest.trigger_dag_run(DAG_IDS[implementation])
                    for implementation in turn:
                        af.rest.wait_for_dag_run_state(
                            DAG_IDS[implementation],
                            runs[implementation],
                            states={"success", "failed"},
                            timeout_seconds=settings.phase_timeout_seconds,
                        )
                        wall[implementation] = round(time.monotonic() - started, 1)
                    # The run is success once the last try reported; its worker takes a moment more.
                    _wait_until_no_try_runs(sampler, settings.sample_seconds)
            task_instances = {
                impl: _paged(
                    af.rest,
                    f"/dags/{DAG_IDS[impl]}/dagRuns/{urllib.parse.quote(runs[impl], safe='')}/taskInstances",
                    "task_instances",
                    {"task_id": TASK_ID},
                )
                for impl in IMPLEMENTATIONS
            }
            events = {
                impl: _paged(
                    af.rest,
                    "/eventLogs",
                    "event_logs",
                    {"dag_id": DAG_IDS[impl], "run_id": runs[impl], "task_id": TASK_ID},
                )
                for impl in IMPLEMENTATIONS
            }
        emulator_runs = emu.control.runs()
    by_try = process_segments(sampler.samples)
    return [
        _result(impl, task_instances[impl], events[impl], emulator_runs, by_try, wall[impl])
        for impl in IMPLEMENTATIONS
    ]


def _wait_until_no_try_runs(sampler: ProcessSampler, interval: float, timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    seen = len(sampler.samples)
    while time.monotonic() < deadline:
        time.sleep(interval)
        fresh = sampler.samples[seen:]
        if fresh and not fresh[-1].processes:
            return


def _result(
    implementation: str,
    task_instances: list[dict[str, Any]],
    events: list[dict[str, Any]],
    emulator_runs: list[dict[str, Any]],
    by_try: Mapping[str, list[Any]],
    wall_seconds: float,
) -> ImplementationResult:
    audit = audit_segments(
        AuditEvent(str(e["map_index"]), int(e["try_number"] or 0), float(_epoch(e["when"]) or 0), e["event"])
        for e in events
        if e.get("try_number") is not None
    )
    attempts = []
    for ti in sorted(task_instances, key=lambda t: int(t["map_index"])):
        segments = by_try.get(ti["id"], [])
        audited = audit.get((str(ti["map_index"]), int(ti["try_number"])), [])
        name = run_name(implementation, int(ti["map_index"]))
        mine = [r for r in emulator_runs if r.get("run_name") == name]
        ended = [r["end_time"] / 1000 for r in mine if r.get("end_time")]
        finished = _epoch(ti.get("end_date"))
        attempts.append(
            Attempt(
                map_index=int(ti["map_index"]),
                ti_id=ti["id"],
                state=str(ti["state"]),
                segments=tuple(round(s.seconds, 3) for s in segments),
                audit_segments=tuple(round(s.seconds, 3) for s in audited),
                audit_inside=len(segments) == len(audited)
                and all(contains(p, a) for p, a in zip(segments, audited, strict=True)),
                emulator_runs=len(mine),
                latency_seconds=round(finished - max(ended), 3) if finished and ended else None,
            )
        )
    return ImplementationResult(
        implementation=implementation,
        operator=OPERATORS[implementation],
        dag_id=DAG_IDS[implementation],
        wall_seconds=wall_seconds,
        attempts=tuple(attempts),
        slot=SlotStats.of([a.segments for a in attempts]),
        audit=SlotStats.of([a.audit_segments for a in attempts]),
        latency=Percentiles.of([a.latency_seconds for a in attempts if a.latency_seconds is not None]),
    )

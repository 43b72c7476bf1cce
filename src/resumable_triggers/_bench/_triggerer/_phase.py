"""One phase of ``bench-triggerer``: a fresh ``airflow triggerer`` asked to run N deferred tasks.

::

    restart the triggerer (capacity for this phase) ── idle: RSS of its tree with 0 triggers
    submit N runs to the emulator (they run until told to end)
    seed N deferred task instances (``_seed``) ─────── t = 0: the triggerer may pick them up
    end the runs at t = lead + offsets spread over ``spread_seconds`` (every k-th FAILED)
    sample every second: the tree (CPU, RSS, sockets), the database (assigned, still deferred)
    until no task is deferred or the deadline; then read the events back, retire what is left

Runs are ended through the emulator's control API rather than given durations up front, so that
however long seeding takes, each run ends a known time after the triggerer could first see it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from resumable_triggers._bench._triggerer._deployment import (
    DAG_ID,
    TASK_IDS,
    SeedProcess,
    TreeProbe,
    TreeSample,
    database_port,
)
from resumable_triggers._bench._triggerer._report import binding_limit, percentile
from resumable_triggers._bench._triggerer._results import TreeSeries, TriggererPhase
from resumable_triggers._bench._triggerer._signals import (
    BLOCKED,
    CAPACITY_LEFT,
    RUNNING,
    StatsdListener,
    parse_stalls,
)
from resumable_triggers._bench._workload import RunPlan, submit_runs
from resumable_triggers.testing import EmulatorControl
from resumable_triggers.testing.airflow import AirflowDeployment

SAMPLE_SECONDS = 1.0
# How long the restarted triggerer idles before its tree is measured with 0 triggers.
IDLE_SECONDS = 3.0
# Runs wait this long for the control API to end them (far longer than any phase).
OPEN_RUN_SECONDS = 24 * 3600.0


def capacity_env(capacity: int) -> dict[str, str]:
    return {"AIRFLOW__TRIGGERER__CAPACITY": str(capacity)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSettings:
    implementation: str  # "ours" or "provider"
    triggers: int
    capacity: int
    capacity_is_default: bool
    poll_seconds: float
    lead_seconds: float
    spread_seconds: float
    failure_every: int
    deadline_seconds: float  # after seeding


@dataclass(frozen=True, slots=True)
class Bench:
    """What every phase shares: the deployment, its seed process, the emulator, StatsD."""

    airflow: AirflowDeployment
    seeder: SeedProcess
    emulator_url: str
    emulator_token: str
    emulator_port: int
    statsd: StatsdListener | None
    workdir: Path


@dataclass(slots=True)
class _Samples:
    t: list[float] = field(default_factory=list)
    tree: list[TreeSample] = field(default_factory=list)
    assigned: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)


_ASSIGNED = text(
    'SELECT count(*) FROM "trigger" t JOIN task_instance ti ON ti.trigger_id = t.id '
    "WHERE ti.dag_id = :dag AND ti.run_id LIKE :prefix AND t.triggerer_id IS NOT NULL"
)
_DEFERRED = text(
    "SELECT count(*) FROM task_instance WHERE dag_id = :dag AND run_id LIKE :prefix AND state = 'deferred'"
)


def run_phase(settings: PhaseSettings, bench: Bench, index: int, *, restart: bool = True) -> TriggererPhase:
    """Run one phase end to end; the triggerer keeps running afterwards, empty. ``restart=False``
    only for a triggerer that was just started at this capacity and never ran a trigger."""
    af = bench.airflow
    prefix = f"p{index}-{settings.implementation}-{settings.triggers}"
    task_id = TASK_IDS[settings.implementation]
    log_path = af.logs.path("triggerer")
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    if restart:
        af.restart("triggerer", grace_seconds=3.0, env=capacity_env(settings.capacity))
    probe = TreeProbe(
        af.pids()["triggerer"],
        workspace_port=bench.emulator_port,
        database_port=database_port(af.database_url),
    )
    time.sleep(IDLE_SECONDS)
    idle = probe.sample()
    control = EmulatorControl(bench.emulator_url, timeout_seconds=120.0)
    plan = RunPlan.staggered(
        count=settings.triggers,
        go_at=time.time(),
        lead_seconds=OPEN_RUN_SECONDS,
        spread_seconds=0.0,
        failure_every=settings.failure_every,
    )
    run_ids = asyncio.run(submit_runs(bench.emulator_url, bench.emulator_token, plan))
    # The runs end at these offsets after seeding (the same stagger the synthetic bench uses).
    ends = RunPlan.staggered(
        count=settings.triggers,
        go_at=0.0,
        lead_seconds=settings.lead_seconds,
        spread_seconds=settings.spread_seconds,
        failure_every=settings.failure_every,
    )
    if bench.statsd is not None:
        bench.statsd.reset()
    started = time.monotonic()
    bench.seeder.call(
        "seed",
        dag_id=DAG_ID,
        task_id=task_id,
        implementation=settings.implementation,
        run_ids=run_ids,
        run_prefix=prefix,
        poll_seconds=settings.poll_seconds,
        workspace_url=bench.emulator_url,
    )
    seeded_mono = time.monotonic()
    seed_seconds = seeded_mono - started
    engine = create_engine(af.database_url, pool_size=1, max_overflow=0)
    samples = _Samples()
    stop = threading.Event()
    params = {"dag": DAG_ID, "prefix": f"{prefix}-%"}

    def sample() -> None:
        with engine.connect() as db:
            while not stop.is_set():
                try:
                    tree = probe.sample()
                except Exception:  # noqa: BLE001 - the triggerer died: the phase reports what it saw
                    return
                assigned = int(db.execute(_ASSIGNED, params).scalar_one())
                deferred = int(db.execute(_DEFERRED, params).scalar_one())
                db.rollback()
                samples.t.append(round(time.monotonic() - seeded_mono, 3))
                samples.tree.append(tree)
                samples.assigned.append(assigned)
                samples.deferred.append(deferred)
                stop.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, name="bench-triggerer-sampler", daemon=True)
    sampler.start()
    errors: list[str] = []
    try:
        _end_runs(control, run_ids, ends, seeded_mono, errors)
        deadline = seeded_mono + settings.deadline_seconds
        while time.monotonic() < deadline and not (samples.deferred and samples.deferred[-1] == 0):
            time.sleep(SAMPLE_SECONDS)
    finally:
        stop.set()
        sampler.join()
        engine.dispose()
    wall = time.monotonic() - seeded_mono
    read_back = bench.seeder.call("outcomes", dag_id=DAG_ID, run_prefix=prefix, task_id=task_id)
    bench.seeder.call("retire", dag_id=DAG_ID, run_prefix=prefix)
    with log_path.open("rb") as log:
        log.seek(log_offset)
        stalls = parse_stalls(log.read().decode(errors="replace"))
    end_times = {int(r["run_id"]): r["end_time"] / 1000 for r in control.runs() if r.get("end_time")}
    return _result(
        settings,
        samples=samples,
        idle=idle,
        stalls=stalls,
        read_back=read_back["task_instances"],
        run_ids=run_ids,
        expected=ends.outcomes,
        end_times=end_times,
        errors=errors,
        wall_seconds=wall,
        seed_seconds=seed_seconds,
        statsd=bench.statsd,
    )


def _end_runs(
    control: EmulatorControl, run_ids: list[int], ends: RunPlan, origin: float, errors: list[str]
) -> None:
    """End each run at its planned offset after ``origin`` (monotonic), in order of its end."""
    for offset, run_id, outcome in sorted(zip(ends.ends_at, run_ids, ends.outcomes, strict=True)):
        time.sleep(max(0.0, origin + offset - time.monotonic()))
        try:
            control.finish_run(
                run_id,
                result_state=outcome,
                error=None if outcome == "SUCCESS" else "planned failure (bench)",
            )
        except Exception as exc:  # noqa: BLE001 - counted: a run that could not be ended is an error
            errors.append(f"run {run_id}: could not be ended: {exc!r}")


def event_outcome(implementation: str, event: Any) -> str:
    """SUCCESS / FAILED from the event a trigger delivered, or what went wrong instead."""
    if not isinstance(event, dict):
        return "NO_EVENT"
    if implementation == "provider":
        import json

        state = json.loads(event.get("run_state") or "{}")
        return str(state.get("result_state") or state.get("life_cycle_state") or "UNKNOWN")
    if event.get("outcome") == "watch_error":
        return "WATCH_ERROR"
    return str(event.get("result_state") or event.get("state") or "UNKNOWN")


def _peak(values: list[int]) -> int:
    return max(values, default=0)


def _result(
    settings: PhaseSettings,
    *,
    samples: _Samples,
    idle: TreeSample,
    stalls: tuple[float, ...],
    read_back: dict[str, Any],
    run_ids: list[int],
    expected: tuple[str, ...],
    end_times: dict[int, float],
    errors: list[str],
    wall_seconds: float,
    seed_seconds: float,
    statsd: StatsdListener | None,
) -> TriggererPhase:
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    wrong = undelivered = events = 0
    for index, run_id in enumerate(run_ids):
        row = read_back.get(str(index))
        if row is None or row["state"] == "deferred" or row["delivered_at"] is None:
            undelivered += 1
            errors.append(f"run {run_id}: no event (task instance {row and row['state']})")
            continue
        events += 1
        outcome = event_outcome(settings.implementation, row["event"])
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome != expected[index]:
            wrong += 1
            errors.append(f"run {run_id}: event says {outcome}, the run ended {expected[index]}")
        if run_id in end_times:
            latencies.append(round(row["delivered_at"] - end_times[run_id], 3))
    trees = samples.tree
    peak_assigned = _peak(samples.assigned)
    target = min(settings.triggers, settings.capacity)
    ramp = next((t for t, a in zip(samples.t, samples.assigned, strict=True) if a >= target), None)
    # From the first sample (just after the seeded tasks were committed) to the last: what running
    # them cost, without the idle wait while the DAG runs were being created.
    cpu = (trees[-1].cpu_seconds - trees[0].cpu_seconds) if trees else 0.0
    span = samples.t[-1] - samples.t[0] if samples.t else 0.0
    fraction = cpu / span if span > 0 else None
    rss_peak = max((s.rss_bytes for s in trees), default=idle.rss_bytes)
    fractions: list[float] = [0.0]
    for i in range(1, len(trees)):
        dt = samples.t[i] - samples.t[i - 1]
        used = trees[i].cpu_seconds - trees[i - 1].cpu_seconds
        fractions.append(round(used / dt, 4) if dt > 0 else 0.0)
    totals = statsd.totals() if statsd is not None else None
    latencies.sort()
    return TriggererPhase(
        implementation=settings.implementation,
        triggers=settings.triggers,
        capacity=settings.capacity,
        capacity_is_default=settings.capacity_is_default,
        poll_seconds=settings.poll_seconds,
        lead_seconds=settings.lead_seconds,
        spread_seconds=settings.spread_seconds,
        wall_seconds=round(wall_seconds, 1),
        seed_seconds=round(seed_seconds, 1),
        peak_assigned=peak_assigned,
        ramp_seconds=ramp,
        limit_bound=binding_limit(
            asked=settings.triggers,
            capacity=settings.capacity,
            peak_assigned=peak_assigned,
            cpu_core_fraction=fraction,
        ),
        cpu_seconds=round(cpu, 2),
        cpu_core_fraction=None if fraction is None else round(fraction, 4),
        rss_idle_bytes=idle.rss_bytes,
        rss_peak_bytes=rss_peak,
        rss_bytes_per_task=round((rss_peak - idle.rss_bytes) / peak_assigned, 1) if peak_assigned else None,
        processes_peak=max((s.processes for s in trees), default=idle.processes),
        workspace_connections_peak=max((s.workspace_connections for s in trees), default=0),
        database_connections_peak=max((s.database_connections for s in trees), default=0),
        stalls=len(stalls),
        stall_max_seconds=max(stalls, default=None),
        stall_total_seconds=round(sum(stalls), 2),
        metrics_blocked_main_thread=None if totals is None else totals.counters.get(BLOCKED, 0.0),
        metrics_running_peak=None if totals is None else totals.gauge_max.get(RUNNING),
        metrics_capacity_left_min=None if totals is None else totals.gauge_min.get(CAPACITY_LEFT),
        events=events,
        wrong_outcomes=wrong,
        undelivered=undelivered,
        error_details=tuple(errors[:20]),
        outcomes=outcomes,
        latency_p50_seconds=percentile(latencies, 50),
        latency_p99_seconds=percentile(latencies, 99),
        latency_max_seconds=max(latencies, default=None),
        latencies_seconds=tuple(latencies),
        series=TreeSeries(
            t=tuple(samples.t),
            cpu_core_fraction=tuple(fractions[: len(samples.t)]),
            rss_bytes=tuple(float(s.rss_bytes) for s in trees),
            assigned=tuple(float(a) for a in samples.assigned),
            deferred=tuple(float(d) for d in samples.deferred),
        ),
    )

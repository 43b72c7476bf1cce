"""The trigger process: N real triggers on one asyncio loop, as Airflow's triggerer runs them.

Run by the orchestrator as ``python -c "...main(sys.argv)" SETTINGS_JSON`` (see ``_phase``), with
``AIRFLOW_HOME`` and ``AIRFLOW_CONN_DATABRICKS_DEFAULT`` already in its environment. Protocol on
stdin/stdout, one JSON object per line:

1. after importing Airflow, configuring its logging and watching one finished run to its end (a
   warm-up), it prints ``{"ready": <rss bytes>}``: the baseline, everything but the triggers;
2. it reads ``{"go": <path of a JSON list of run ids>}``, builds one trigger per run and runs each in
   a task of its own, as the triggerer's ``run_trigger`` does;
3. ``main`` mode: until every trigger fired or the deadline; ``storm`` mode: for ``storm_seconds``,
   then it cancels every trigger, as a triggerer shutdown does; ``memory`` mode: it adds triggers
   in steps up to each of ``memory_steps``, lets each step's first polls settle, and takes RSS and
   tracemalloc's count after a full collection (``MemoryPoints``), then cancels them;
4. it writes its measurements to ``result`` and prints ``{"done": true}``.

Logs go through Airflow's own structlog configuration (JSON lines, call-site fields) into a file, so
each implementation pays what its log lines cost in a real triggerer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    """What the orchestrator asks of one trigger process (JSON in argv[1])."""

    implementation: str  # "ours" or "provider"
    mode: str  # "main" or "storm"
    poll_seconds: float
    requests_per_second: float
    deadline_seconds: float
    # A window (seconds after the start) in which every run is watched and none finishes: its CPU
    # is the cost of watching alone, without the one-off costs of starting and finishing a trigger.
    steady_from_seconds: float = 0.0
    steady_until_seconds: float = 0.0
    storm_seconds: float
    greenback: bool
    log_file: str
    result: str
    # A run that has already finished: one trigger watches it to the end before the baseline is
    # taken, so one-time costs (lazy imports, provider manager, SDK config) are not counted per run.
    warmup_run_id: int | None = None
    # gc.freeze() after start-up, as Airflow's DAG processor does: a full collection then skips the
    # ~250,000 objects Airflow itself holds. Off by default: the triggerer does not do it.
    gc_freeze: bool = False
    # memory mode: the trigger counts to measure at, ascending, and how long each step settles.
    memory_steps: tuple[int, ...] = ()
    settle_seconds: float = 0.0
    # Trigger i starts start_spread_seconds * i / N after the first (0: all at once, a restart), as
    # tasks deferring at random times would: ``bench-capacity`` measures polls at steady phases.
    start_spread_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPoints:
    """memory mode: per step, the triggers running, RSS less tracemalloc's own bookkeeping, and the
    bytes tracemalloc attributes to allocations made since just before the first trigger."""

    triggers: list[int]
    rss_bytes: list[int]
    traced_bytes: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerResult:
    """What the trigger process measured itself. Times are epoch seconds; CPU is user + system."""

    started_at: float
    ended_at: float
    cpu_seconds: float
    steady_cpu_seconds: float | None
    steady_wall_seconds: float | None
    baseline_rss_bytes: int
    max_rss_bytes: int
    loop_lag_max_seconds: float
    # [seconds since start, worst lag in that second]
    loop_lag_by_second: list[tuple[int, float]]
    # Longest garbage-collector pause per generation (0, 1, 2) while the triggers ran.
    gc_pause_max_seconds: list[float]
    # run id -> [epoch seconds when the event fired, outcome: SUCCESS/FAILED/... or WATCH_ERROR]
    events: dict[int, tuple[float, str]]
    errors: list[str]


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _outcome(implementation: str, payload: dict[str, Any]) -> str:
    """SUCCESS / FAILED (the run's result state) or WATCH_ERROR, whichever trigger fired."""
    if implementation == "provider":
        state = json.loads(payload["run_state"])
        return str(state.get("result_state") or state.get("life_cycle_state"))
    if payload["outcome"] == "watch_error":
        return "WATCH_ERROR"
    return str(payload.get("result_state") or payload.get("state"))


def _make_trigger(settings: WorkerSettings, run_id: int) -> Any:
    if settings.implementation == "provider":
        from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

        return DatabricksExecutionTrigger(
            run_id=run_id,
            databricks_conn_id="databricks_default",
            polling_period_seconds=settings.poll_seconds,  # type: ignore[arg-type]  # float works
        )
    from resumable_triggers.databricks import DatabricksRunTrigger

    return DatabricksRunTrigger(
        external_id=run_id,
        databricks_conn_id="databricks_default",
        poll_interval_seconds=settings.poll_seconds,
        requests_per_second=settings.requests_per_second,
    )


class _GcPauses:
    """The longest pause of the cyclic garbage collector, per generation: a full collection walks
    every object of the process (Airflow's included) and shows up as event-loop lag of its own."""

    def __init__(self) -> None:
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.longest[generation] = max(self.longest[generation], time.perf_counter() - self._started)


class _LoopLag:
    """The longest the loop ran callbacks without returning to its selector: the worst delay any
    ready callback (a timer, an arriving answer) could have seen.

    Measured between consecutive ``select`` calls rather than with a ticking task: on this VM each
    timer wakeup of an idle process costs ~0.3 ms of CPU, so a 10 Hz ticker would cost the measured
    process more than watching ten thousand runs does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.worst = 0.0
        self.by_second: dict[int, float] = {}
        self._origin = time.perf_counter()
        self._busy_since: float | None = None
        self._selector = loop._selector  # type: ignore[attr-defined]  # selector loops only
        self._select = self._selector.select
        self._selector.select = self._timed_select

    def _timed_select(self, timeout: float | None = None) -> Any:
        now = time.perf_counter()
        if self._busy_since is not None:
            busy = now - self._busy_since
            self.worst = max(self.worst, busy)
            second = int(now - self._origin)
            self.by_second[second] = max(self.by_second.get(second, 0.0), busy)
        events = self._select(timeout)
        self._busy_since = time.perf_counter()
        return events

    def stop(self) -> None:
        self._selector.select = self._select


async def _run_triggers(settings: WorkerSettings, run_ids: list[int], baseline: int) -> WorkerResult:
    probe = _LoopLag(asyncio.get_running_loop())
    gc_pauses = _GcPauses()
    gc.callbacks.append(gc_pauses)
    started_at, cpu_before = time.time(), _cpu_seconds()
    loop = asyncio.get_running_loop()
    steady: list[tuple[float, float]] = []
    if settings.steady_until_seconds > settings.steady_from_seconds:
        for offset in (settings.steady_from_seconds, settings.steady_until_seconds):
            loop.call_later(offset, lambda: steady.append((time.time(), _cpu_seconds())))
    events: dict[int, tuple[float, str]] = {}
    errors: list[str] = []

    async def run_trigger(run_id: int, trigger: Any) -> None:
        # What airflow.jobs.triggerer_job_runner.TriggerRunner.run_trigger does around a trigger.
        if settings.greenback:
            import greenback

            await greenback.ensure_portal()
        try:
            async for event in trigger.run():
                events[run_id] = (time.time(), _outcome(settings.implementation, event.payload))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing trigger is a measurement, not a crash
            errors.append(f"run {run_id}: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await trigger.cleanup()

    tasks = []
    for index, run_id in enumerate(run_ids):
        # As TriggerRunner.create_triggers does: yield to the loop around each trigger it builds, so
        # running triggers keep being served while thousands are created.
        await asyncio.sleep(
            max(0.0, started_at + settings.start_spread_seconds * index / len(run_ids) - time.time())
        )
        trigger = _make_trigger(settings, run_id)
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(run_trigger(run_id, trigger)))
    if settings.mode == "storm":
        await asyncio.sleep(max(0.0, started_at + settings.storm_seconds - time.time()))
    else:
        await asyncio.wait(tasks, timeout=max(0.0, started_at + settings.deadline_seconds - time.time()))
    ended_at, cpu_after = time.time(), _cpu_seconds()
    # Measured up to here: cancelling what is left is a triggerer shutdown, not steady work.
    probe.stop()
    gc.callbacks.remove(gc_pauses)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    missing = len(run_ids) - len(events)
    if settings.mode == "main" and missing:
        errors.append(f"{missing} triggers fired no event within {settings.deadline_seconds:.0f} s")
    return WorkerResult(
        started_at=started_at,
        ended_at=ended_at,
        cpu_seconds=cpu_after - cpu_before,
        steady_cpu_seconds=steady[1][1] - steady[0][1] if len(steady) == 2 else None,
        steady_wall_seconds=steady[1][0] - steady[0][0] if len(steady) == 2 else None,
        baseline_rss_bytes=baseline,
        # ru_maxrss is in KiB on Linux; it is the process's peak, reached while the triggers ran.
        max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        loop_lag_max_seconds=probe.worst,
        loop_lag_by_second=sorted(probe.by_second.items()),
        gc_pause_max_seconds=list(gc_pauses.longest),
        events=events,
        errors=errors,
    )


async def _measure_memory(settings: WorkerSettings, run_ids: list[int]) -> MemoryPoints:
    points = MemoryPoints(triggers=[], rss_bytes=[], traced_bytes=[])
    tasks: list[asyncio.Task[None]] = []

    async def run_trigger(trigger: Any) -> None:
        if settings.greenback:
            import greenback

            await greenback.ensure_portal()
        with contextlib.suppress(Exception):  # a failing trigger shows as missing memory, not a crash
            async for _ in trigger.run():
                pass

    # Started here, after the baseline: only what the triggers allocate from now on is traced.
    tracemalloc.start()
    for step in settings.memory_steps:
        while len(tasks) < step:
            await asyncio.sleep(0)
            trigger = _make_trigger(settings, run_ids[len(tasks)])
            tasks.append(asyncio.create_task(run_trigger(trigger)))
        # Long enough for every new trigger's first poll (and so its share of sessions, buffers and
        # snapshots), shorter than an interval: no step catches the triggers mid-poll.
        await asyncio.sleep(settings.settle_seconds)
        gc.collect()
        points.triggers.append(step)
        points.rss_bytes.append(_rss_bytes() - tracemalloc.get_tracemalloc_memory())
        points.traced_bytes.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return points


def _configure_logging(log_file: str) -> Any:
    from airflow.sdk.log import configure_logging

    output = open(log_file, "wb")  # noqa: SIM115 - open for the process's lifetime
    configure_logging(json_output=True, output=output, sending_to_supervisor=True)
    return output


async def _warm_up(settings: WorkerSettings, run_id: int) -> None:
    trigger = _make_trigger(settings, run_id)

    async def watch() -> None:
        async for _ in trigger.run():
            pass

    await asyncio.wait_for(watch(), timeout=120)
    await trigger.cleanup()


def main(argv: list[str]) -> int:
    raw = json.loads(argv[1])
    settings = WorkerSettings(**{**raw, "memory_steps": tuple(raw.get("memory_steps", ()))})
    log_output = _configure_logging(settings.log_file)
    # Import both trigger modules before the baseline, so it holds every module either needs.
    import airflow.providers.databricks.triggers.databricks  # noqa: F401

    import resumable_triggers.databricks._trigger  # noqa: F401

    if settings.warmup_run_id is not None:
        asyncio.run(_warm_up(settings, settings.warmup_run_id))
    gc.collect()
    if settings.gc_freeze:
        gc.freeze()
    baseline = _rss_bytes()
    print(json.dumps({"ready": baseline}), flush=True)
    command = json.loads(sys.stdin.readline())
    with open(command["go"]) as f:
        run_ids = [int(r) for r in json.load(f)]
    result: WorkerResult | MemoryPoints
    if settings.mode == "memory":
        result = asyncio.run(_measure_memory(settings, run_ids))
    else:
        result = asyncio.run(_run_triggers(settings, run_ids, baseline))
    log_output.flush()
    with open(settings.result, "w") as f:
        json.dump(asdict(result), f)
    print(json.dumps({"done": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

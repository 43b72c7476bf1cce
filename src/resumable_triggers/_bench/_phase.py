"""One phase: a fresh emulator process, N runs submitted, one trigger process watching them, measured.

``main`` phases watch runs that finish at staggered times until every trigger fired; ``storm`` phases
start N triggers at once on long runs, behind an emulator rate limit, and stop them after a few
intervals (a triggerer restart). Each returns a plain dict, ready for the JSON report.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from resumable_triggers._bench._sampler import Sampler, Samples
from resumable_triggers._bench._worker import WorkerSettings
from resumable_triggers._bench._workload import SETUP_ENDPOINT, RunPlan, submit_runs
from resumable_triggers.databricks.client import ClientSettings
from resumable_triggers.testing import EmulatorControl, EmulatorProcess, airflow_connection

# Time from planning to "go": the trigger process imports Airflow meanwhile (~3 s on 2 cores).
PREPARE_SECONDS = 8.0
SAMPLE_SECONDS = 1.0
_WORKER_MAIN = "import sys; from resumable_triggers._bench._worker import main; sys.exit(main(sys.argv))"
# Log lines that mark a trigger's first successful poll (base class / provider wording).
_FIRST_POLL = {
    "ours": re.compile(r"^job (\d+) is "),
    "provider": re.compile(r"^run-id (\d+) in run state "),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSettings:
    implementation: str  # "ours" or "provider"
    mode: str  # "main" or "storm"
    runs: int
    poll_seconds: float
    requests_per_second: float
    lead_seconds: float
    spread_seconds: float
    failure_every: int
    storm_seconds: float
    emulator_requests_per_second: float
    emulator_burst: int
    greenback: bool
    gc_freeze: bool = False


def run_phase(settings: PhaseSettings, workdir: Path) -> dict[str, Any]:
    """Run one phase end to end; every process it starts is stopped before it returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    with EmulatorProcess(run_seconds=3600.0) as emulator:
        control = EmulatorControl(emulator.url, timeout_seconds=120.0)
        [warmup_run_id] = asyncio.run(
            submit_runs(
                emulator.url, emulator.token, RunPlan(ends_at=(time.time() + 0.5,), outcomes=("SUCCESS",))
            )
        )
        storm = settings.mode == "storm"
        deadline = (
            settings.storm_seconds
            if storm
            else settings.lead_seconds + settings.spread_seconds + 3 * (settings.poll_seconds) + 30.0
        )
        worker_settings = WorkerSettings(
            implementation=settings.implementation,
            mode=settings.mode,
            poll_seconds=settings.poll_seconds,
            requests_per_second=settings.requests_per_second,
            deadline_seconds=deadline,
            # From the second interval (start-up done) to just before the first run ends.
            steady_from_seconds=settings.poll_seconds,
            steady_until_seconds=0.0 if storm else settings.lead_seconds - 1.0,
            storm_seconds=settings.storm_seconds,
            greenback=settings.greenback,
            log_file=str(workdir / "triggers.log.jsonl"),
            result=str(workdir / "worker-result.json"),
            warmup_run_id=warmup_run_id,
            gc_freeze=settings.gc_freeze,
        )
        with _Worker(worker_settings, emulator.url, emulator.token, workdir) as worker:
            go_at = time.time() + PREPARE_SECONDS + settings.runs / 2000
            plan = RunPlan.staggered(
                count=settings.runs,
                go_at=go_at,
                # Storm runs outlive the storm: every trigger must find its run active.
                lead_seconds=settings.storm_seconds + 10 * settings.poll_seconds
                if storm
                else settings.lead_seconds,
                spread_seconds=settings.poll_seconds if storm else settings.spread_seconds,
                failure_every=0 if storm else settings.failure_every,
            )
            run_ids = asyncio.run(submit_runs(emulator.url, emulator.token, plan))
            worker.read("ready", timeout_seconds=180.0)
            time.sleep(max(0.0, go_at - time.time()))
            if storm:
                control.set_rate_limit(
                    endpoint=None,
                    requests_per_second=settings.emulator_requests_per_second,
                    burst=settings.emulator_burst,
                )
            before = control.counters()
            ids_file = workdir / "run-ids.json"
            ids_file.write_text(json.dumps(run_ids))
            with Sampler(worker.pid, emulator.port, control, every_seconds=SAMPLE_SECONDS) as sampler:
                worker.send({"go": str(ids_file)})
                worker.read("done", timeout_seconds=deadline + 300.0)
            after = control.counters()
            result = json.loads(Path(worker_settings.result).read_text())
            if storm:
                log = control.request_log
                records = [r for r in log if r.time >= result["started_at"]]
                metrics = _storm_metrics(
                    settings, result, sampler.samples, before, after, records, workdir, run_ids
                )
                # The emulator keeps its last 10,000 requests: older storm requests would be missing.
                metrics["request_log_truncated"] = bool(log) and log[0].time >= result["started_at"]
                return metrics
            ends = {int(r["run_id"]): r["end_time"] / 1000 for r in control.runs() if r.get("end_time")}
            return _main_metrics(settings, result, sampler.samples, before, after, plan, run_ids, ends)


class _Worker:
    """The trigger process, started with a throw-away AIRFLOW_HOME and the emulator as connection."""

    def __init__(self, settings: WorkerSettings, url: str, token: str, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "AIRFLOW"))}
        env.update(
            AIRFLOW_HOME=str(workdir / "airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_CONN_DATABRICKS_DEFAULT=airflow_connection(url, token),
            PYTHONUNBUFFERED="1",
        )
        self._stderr: IO[bytes] = open(workdir / "worker.stderr", "wb")  # noqa: SIM115 - closed in __exit__
        self._proc = subprocess.Popen(
            # -c, not -m: running a module of a package that its own __init__ imports makes runpy warn.
            [sys.executable, "-c", _WORKER_MAIN, json.dumps(asdict(settings))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        self._buffer = b""
        self._stderr_path = workdir / "worker.stderr"

    @property
    def pid(self) -> int:
        return self._proc.pid

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._stderr.close()

    def send(self, message: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(message) + "\n").encode())
        self._proc.stdin.flush()

    def read(self, key: str, *, timeout_seconds: float) -> Any:
        """Wait for the worker's ``{key: ...}`` line; raise with its stderr if it dies or times out."""
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout_seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if key in message:
                        return message[key]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"bench worker sent no {key!r} within {timeout_seconds:.0f} s")
                if selector.select(remaining):
                    chunk = os.read(self._proc.stdout.fileno(), 65536)
                    if not chunk:
                        tail = self._stderr_path.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"bench worker exited before {key!r}:\n{tail}")
                    self._buffer += chunk


# ---- metrics ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _requests(before: Any, after: Any) -> dict[str, int]:
    return {
        endpoint: count - before.requests_by_endpoint.get(endpoint, 0)
        for endpoint, count in after.requests_by_endpoint.items()
        if endpoint != SETUP_ENDPOINT and count - before.requests_by_endpoint.get(endpoint, 0)
    }


def _series(samples: Samples) -> dict[str, list[float]]:
    """Per-sample rates from cumulative counters, aligned on the sample times."""
    cpu = [0.0] + [
        (b - a) / max(1e-9, tb - ta)
        for a, b, ta, tb in zip(
            samples.cpu_seconds, samples.cpu_seconds[1:], samples.t, samples.t[1:], strict=False
        )
    ]
    rate = [0.0] + [
        (b - a) / max(1e-9, tb - ta)
        for a, b, ta, tb in zip(
            samples.requests, samples.requests[1:], samples.t, samples.t[1:], strict=False
        )
    ]
    return {
        "t": samples.t,
        "cpu_core_fraction": [round(c, 4) for c in cpu],
        "rss_bytes": [float(r) for r in samples.rss_bytes],
        "connections": [float(c) for c in samples.connections],
        "requests_per_second": [round(r, 2) for r in rate],
    }


def _common(settings: PhaseSettings, result: dict[str, Any], samples: Samples) -> dict[str, Any]:
    wall = result["ended_at"] - result["started_at"]
    peak = max(result["max_rss_bytes"], *samples.rss_bytes) if samples.rss_bytes else result["max_rss_bytes"]
    steady_cpu, steady_wall = result["steady_cpu_seconds"], result["steady_wall_seconds"]
    return {
        "implementation": settings.implementation,
        "runs": settings.runs,
        "poll_seconds": settings.poll_seconds,
        # The schedule the phase ran (the plot draws when runs ended from these, never re-deriving them).
        "lead_seconds": settings.lead_seconds,
        "spread_seconds": settings.spread_seconds,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(result["cpu_seconds"], 3),
        "cpu_core_fraction": round(result["cpu_seconds"] / wall, 4) if wall > 0 else None,
        # While every run is watched and none finishes: what watching alone costs, per run-interval.
        "steady_cpu_core_fraction": None if not steady_wall else round(steady_cpu / steady_wall, 5),
        "steady_cpu_ms_per_run_interval": None
        if not steady_wall
        else round(1000 * steady_cpu / (settings.runs * steady_wall / settings.poll_seconds), 4),
        "rss_baseline_bytes": result["baseline_rss_bytes"],
        "rss_peak_bytes": peak,
        "rss_bytes_per_run": round((peak - result["baseline_rss_bytes"]) / settings.runs),
        "connections_peak": max(samples.connections, default=0),
        "loop_lag_max_seconds": round(result["loop_lag_max_seconds"], 4),
        "loop_lag_by_second": result["loop_lag_by_second"],
        "gc_pause_max_seconds": [round(p, 4) for p in result["gc_pause_max_seconds"]],
        "greenback_portal": settings.greenback,
        "gc_freeze": settings.gc_freeze,
    }


def _main_metrics(
    settings: PhaseSettings,
    result: dict[str, Any],
    samples: Samples,
    before: Any,
    after: Any,
    plan: RunPlan,
    run_ids: list[int],
    ends: dict[int, float],
) -> dict[str, Any]:
    events = {int(k): (v[0], v[1]) for k, v in result["events"].items()}
    started, ended = result["started_at"], result["ended_at"]
    requests = _requests(before, after)
    watched_seconds = sum(min(events.get(r, (ended,))[0], ended) - started for r in run_ids)
    run_intervals = watched_seconds / settings.poll_seconds
    latencies = [events[r][0] - ends[r] for r in run_ids if r in events and r in ends]
    wrong = [
        f"run {r}: expected {expected}, the event said {events[r][1]}"
        for r, expected in zip(run_ids, plan.outcomes, strict=True)
        if r in events and events[r][1] != expected
    ]
    missing = [r for r in run_ids if r not in events]
    details = list(result["errors"]) + wrong[:10] + [f"run {r}: no event" for r in missing[:10]]
    return {
        **_common(settings, result, samples),
        "requests_total": sum(requests.values()),
        "requests_by_endpoint": requests,
        "requests_per_run_interval": round(sum(requests.values()) / run_intervals, 4)
        if run_intervals
        else None,
        "responses_429": after.responses_by_status.get(429, 0) - before.responses_by_status.get(429, 0),
        "detection_latency_p50_seconds": _round(percentile(latencies, 50)),
        "detection_latency_p99_seconds": _round(percentile(latencies, 99)),
        "detection_latency_max_seconds": _round(max(latencies, default=None)),
        "events": len(events),
        "errors": len(wrong) + len(missing) + len(result["errors"]),
        "error_details": details[:20],
        "outcomes": dict(Counter(outcome for _, outcome in events.values())),
        "latencies_seconds": sorted(round(latency, 3) for latency in latencies),
        "series": _series(samples),
    }


def _first_polls(implementation: str, log_file: Path) -> dict[int, float]:
    """Epoch seconds of each trigger's first successful poll, from its first state log line."""
    pattern = _FIRST_POLL[implementation]
    first: dict[int, float] = {}
    with log_file.open() as lines:
        for line in lines:
            record = json.loads(line)
            match = pattern.match(str(record.get("event", "")))
            if match and int(match.group(1)) not in first:
                first[int(match.group(1))] = datetime.fromisoformat(record["timestamp"]).timestamp()
    return first


def _storm_metrics(
    settings: PhaseSettings,
    result: dict[str, Any],
    samples: Samples,
    before: Any,
    after: Any,
    records: list[Any],
    workdir: Path,
    run_ids: list[int],
) -> dict[str, Any]:
    started = result["started_at"]
    times = sorted(r.time - started for r in records if r.endpoint != SETUP_ENDPOINT)
    seconds = math.ceil(settings.storm_seconds)
    per_second = [0] * seconds
    for t in times:
        if 0 <= t < seconds:
            per_second[int(t)] += 1
    burst = ClientSettings().burst
    # The budget allows burst + rate * w requests in any window of w seconds; check several widths.
    # Arrival times at the emulator, not grant times at the client: loopback jitter can move one
    # request across a window's edge, so an excess of one request is jitter, two would be a breach.
    worst_ratio, worst_excess = 0.0, -math.inf
    for width in (1.0, 2.0, 5.0, 10.0, settings.poll_seconds):
        allowed = burst + settings.requests_per_second * width
        j = 0
        for i, t in enumerate(times):
            while times[j] < t - width:
                j += 1
            worst_ratio = max(worst_ratio, (i - j + 1) / allowed)
            worst_excess = max(worst_excess, i - j + 1 - allowed)
    polls = _first_polls(settings.implementation, workdir / "triggers.log.jsonl")
    first = {run_id: polls[run_id] for run_id in run_ids if run_id in polls}  # not the warm-up's
    delays = [t - started for t in first.values()]
    requests = _requests(before, after)
    return {
        **_common(settings, result, samples),
        # The provider's trigger has no budget; the ratio below still compares it with ours.
        "budget_requests_per_second": settings.requests_per_second
        if settings.implementation == "ours"
        else None,
        "budget_burst": burst,
        "emulator_limit_requests_per_second": settings.emulator_requests_per_second,
        "emulator_limit_burst": settings.emulator_burst,
        "requests_by_endpoint": requests,
        "requests_per_second": per_second,
        "max_requests_in_1s": max(per_second, default=0),
        # > 1.0 means some window saw more than the budget allows (burst + rate * width).
        "max_window_to_budget_ratio": round(worst_ratio, 3),
        "max_excess_requests": None if not times else round(worst_excess, 1),
        "within_budget": not times or worst_excess <= 1,
        "responses_429": after.responses_by_status.get(429, 0) - before.responses_by_status.get(429, 0),
        "runs_polled": len(first),
        "first_poll_p50_seconds": _round(percentile(delays, 50)),
        "first_poll_p99_seconds": _round(percentile(delays, 99)),
        "first_poll_max_seconds": _round(max(delays, default=None)),
        "errors": len(result["errors"]),
        "error_details": result["errors"][:20],
        "series": _series(samples),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

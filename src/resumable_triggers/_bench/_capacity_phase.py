"""One ``bench-capacity`` size: a fresh emulator with the workspace's rate limit, N runs, one fresh
trigger process watching them for a fixed window, the emulator's request log, a ``CapacityPoint``.

The schedule, from "go" (the worker's ``started_at``)::

    0 ──── S ──────── 2S ─────────────────────────────────────────── 2S + measured
    triggers start    measured stretch: requests per second, requests per run-interval;
    spread over S     probe runs end evenly spaced in it, the last one at least S + slack + 1 s
    (one per S/N)     before the window closes, so an unnoticed probe means a stale run
    └───────────────── 429s and the busiest 1 s window count over all of it ───────────────┘

Every run but the probes outlives the window, so N stays N (less the probes that ended: at most
a tenth of N, at most ``MAX_PROBES``). The trigger process is the synthetic bench's (``_worker`` in
``storm`` mode: run for the window, then cancel every trigger, as a triggerer shutdown does).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumable_triggers._bench._capacity_results import CapacityPoint
from resumable_triggers._bench._capacity_windows import (
    LogMerge,
    counts_per_window,
    max_in_any_window,
    merge_log,
    poll_gaps,
)
from resumable_triggers._bench._metrics import percentile
from resumable_triggers._bench._phase import _Worker
from resumable_triggers._bench._worker import WorkerSettings
from resumable_triggers._bench._workload import SETUP_ENDPOINT, RunPlan, submit_runs
from resumable_triggers.testing import EmulatorControl, EmulatorProcess, RequestRecord

MAX_PROBES = 100
TOKEN = "dapi-bench-capacity"
# How often the emulator's log (its last 10,000 requests) is copied: 10,000 in 2 s is 5,000 req/s.
LOG_EVERY_SECONDS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacitySettings:
    """One size of one implementation. ``requests_per_second`` is our triggers' budget (ignored by
    the provider's); ``limit_*`` is the emulator's, the workspace's rate limit."""

    implementation: str  # "ours" or "provider"
    runs: int
    poll_seconds: float
    limit_requests_per_second: float
    limit_burst: int
    requests_per_second: float
    measured_seconds: float
    slack_seconds: float

    @property
    def warmup_seconds(self) -> float:
        return 2 * self.poll_seconds

    @property
    def window_seconds(self) -> float:
        return self.warmup_seconds + self.measured_seconds

    @property
    def probes(self) -> int:
        return min(MAX_PROBES, max(1, self.runs // 10))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe_offsets(settings: CapacitySettings) -> tuple[float, ...]:
    """Seconds after "go" at which the probes end: evenly spaced (midpoints) over the measured
    stretch less its last interval + slack + 1 s, so each has time to be noticed in the window."""
    first = settings.warmup_seconds
    last = settings.window_seconds - settings.poll_seconds - settings.slack_seconds - 1.0
    if last <= first:
        raise ValueError(
            f"bench-capacity: a measured stretch of {settings.measured_seconds:g} s leaves no room for "
            f"probes at a {settings.poll_seconds:g} s interval; measure at least "
            f"{settings.poll_seconds + settings.slack_seconds + 2:g} s"
        )
    n = settings.probes
    return tuple(first + (last - first) * (i + 0.5) / n for i in range(n))


def probe_indices(runs: int, probes: int) -> tuple[int, ...]:
    """Which runs (by submission order, which is also start order) are probes: spread evenly, so
    early and late starters are both sampled."""
    return tuple(i * runs // probes for i in range(probes))


class _LogCollector:
    """Copies the emulator's bounded request log every few seconds, from a thread of the
    orchestrator, and joins the copies (``merge_log``)."""

    def __init__(self, control: EmulatorControl, *, every_seconds: float) -> None:
        self.merged = LogMerge(())
        self._control = control
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-capacity-log", daemon=True)

    def __enter__(self) -> _LogCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._copy()

    def _copy(self) -> None:
        self.merged = merge_log(self.merged, self._control.request_log)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._copy()


def run_capacity_point(settings: CapacitySettings, workdir: Path) -> CapacityPoint:
    """Measure one size end to end; every process it starts is stopped before it returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    window = settings.window_seconds
    offsets = probe_offsets(settings)
    probes = probe_indices(settings.runs, len(offsets))
    worker_settings = WorkerSettings(
        implementation=settings.implementation,
        mode="storm",
        poll_seconds=settings.poll_seconds,
        requests_per_second=settings.requests_per_second,
        deadline_seconds=window,
        storm_seconds=window,
        greenback=False,
        log_file=str(workdir / "triggers.log.jsonl"),
        result=str(workdir / "worker-result.json"),
        start_spread_seconds=settings.poll_seconds,
    )
    # The trigger process imports Airflow while the emulator starts (each takes seconds): it only
    # needs the emulator's address, chosen here, once "go" comes.
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        _Worker(worker_settings, url, TOKEN, workdir) as worker,
        EmulatorProcess(run_seconds=3600.0, port=port, extra_args=("--token", TOKEN)) as emulator,
    ):
        if emulator.url != url:
            raise RuntimeError(f"bench-capacity: the emulator serves {emulator.url}, not {url}")
        control = EmulatorControl(emulator.url, timeout_seconds=120.0)
        worker.read("ready", timeout_seconds=180.0)
        # Submitting takes ~1 ms a run; durations are fixed at each submission, so ends hold.
        go_at = time.time() + 1.0 + settings.runs / 1000
        ends = [go_at + window + 10 * settings.poll_seconds + 60.0] * settings.runs
        for index, offset in zip(probes, offsets, strict=True):
            ends[index] = go_at + offset
        plan = RunPlan(ends_at=tuple(ends), outcomes=("SUCCESS",) * settings.runs)
        run_ids = asyncio.run(submit_runs(emulator.url, emulator.token, plan))
        late = time.time() - go_at
        if late > 1.0:
            # The probes' ends were planned from go_at: they now come earlier in the window.
            print(f"bench-capacity: submitting took {late:.0f} s longer than planned", file=sys.stderr)
        time.sleep(max(0.0, -late))
        control.set_rate_limit(
            endpoint=None,
            requests_per_second=settings.limit_requests_per_second,
            burst=settings.limit_burst,
        )
        ids_file = workdir / "run-ids.json"
        ids_file.write_text(json.dumps(run_ids))
        with _LogCollector(control, every_seconds=LOG_EVERY_SECONDS) as log:
            worker.send({"go": str(ids_file)})
            worker.read("done", timeout_seconds=window + 300.0)
        result = json.loads(Path(worker_settings.result).read_text())
        probe_ids = [run_ids[i] for i in probes]
        # One runs/get view per probe, not every run: at 25,600 runs the full list is tens of MB.
        views = [control.get_run(run_id) for run_id in probe_ids]
        ended = {int(v["run_id"]): v["end_time"] / 1000 for v in views if v.get("end_time")}
    return capacity_point(
        settings,
        result,
        log.merged,
        run_ids=run_ids,
        probe_ends={run_id: ended[run_id] for run_id in probe_ids if run_id in ended},
        probes=len(probe_ids),
    )


def capacity_point(
    settings: CapacitySettings,
    result: dict[str, Any],
    log: LogMerge,
    *,
    run_ids: list[int],
    probe_ends: dict[int, float],
    probes: int,
) -> CapacityPoint:
    """What one size measured, from the worker's result (``WorkerResult`` as JSON), the request log
    and when each probe ended at the workspace (epoch seconds). Pure."""
    started = result["started_at"]
    closed = started + settings.window_seconds
    measured_from = started + settings.warmup_seconds
    records: list[RequestRecord] = [
        r for r in log.records if r.endpoint != SETUP_ENDPOINT and started <= r.time < closed
    ]
    measured = [r for r in records if r.time >= measured_from]
    throttled = [r.time for r in records if r.status == 429]
    intervals = math.ceil(settings.window_seconds / settings.poll_seconds)
    events = {int(k): (float(v[0]), str(v[1])) for k, v in result["events"].items()}
    latencies = [events[r][0] - end for r, end in probe_ends.items() if r in events]
    # Only the provider's trigger polls each run on its own; ours lists them, and only probes tell.
    steady = [r for r in run_ids if r not in probe_ends]
    gaps = (
        list(poll_gaps(measured, run_ids=steady, start=measured_from, end=closed).values())
        if settings.implementation == "provider"
        else []
    )
    limit = settings.poll_seconds + settings.slack_seconds
    watched = set(run_ids)
    # Only probes end: any other event (or a probe's WATCH_ERROR) is a trigger that gave up.
    gave_up = [
        f"run {r}: {outcome}"
        for r, (_, outcome) in events.items()
        if r in watched and (r not in probe_ends or outcome == "WATCH_ERROR")
    ]
    failures = list(result["errors"]) + gave_up
    within: bool | None = None
    if probes or gaps:
        within = (
            len(latencies) == probes
            and all(latency <= limit for latency in latencies)
            and all(gap <= limit for gap in gaps)
        )
    run_intervals = settings.runs * settings.measured_seconds / settings.poll_seconds
    return CapacityPoint(
        implementation=settings.implementation,
        runs=settings.runs,
        window_seconds=settings.window_seconds,
        measured_seconds=settings.measured_seconds,
        budget_requests_per_second=settings.requests_per_second
        if settings.implementation == "ours"
        else None,
        requests_total=len(measured),
        requests_by_endpoint=dict(Counter(r.endpoint for r in measured)),
        requests_per_run_interval=round(len(measured) / run_intervals, 4),
        requests_per_second_mean=round(len(measured) / settings.measured_seconds, 3),
        requests_per_second_max_1s=max_in_any_window((r.time for r in records), width=1.0),
        responses_429=len(throttled),
        responses_429_per_interval=counts_per_window(
            throttled, start=started, width=settings.poll_seconds, windows=intervals
        ),
        triggers_failed=len(failures),
        failure_details=tuple(failures[:10]),
        probes=probes,
        probes_detected=len(latencies),
        detection_latency_p50_seconds=_round(percentile(latencies, 50)),
        detection_latency_p99_seconds=_round(percentile(latencies, 99)),
        detection_latency_max_seconds=_round(max(latencies, default=None)),
        poll_gap_p99_seconds=_round(percentile(gaps, 99)),
        poll_gap_max_seconds=_round(max(gaps, default=None)),
        polled_within_interval=within,
        request_log_truncated=log.truncated,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

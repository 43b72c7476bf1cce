"""One phase: a fresh emulator process, N runs submitted, one trigger process watching them, measured.

``run_main_phase`` watches runs that finish at staggered times until every trigger fired;
``run_storm_phase`` starts N triggers at once on long runs, behind an emulator rate limit, and stops
them after a few intervals (a triggerer restart). Both share ``_measured`` (the processes, the
schedule, the sampling) and differ in what they make of it (``_metrics``): a ``MainResult`` or a
``StormResult``, ready for the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from resumable_triggers._bench._metrics import main_metrics, storm_metrics
from resumable_triggers._bench._results import MainResult, StormResult
from resumable_triggers._bench._sampler import Sampler, Samples
from resumable_triggers._bench._worker import WorkerSettings
from resumable_triggers._bench._workload import RunPlan, submit_runs
from resumable_triggers.testing import Counters, EmulatorControl, EmulatorProcess, airflow_connection

# Time from planning to "go": the trigger process imports Airflow meanwhile (~3 s on 2 cores).
PREPARE_SECONDS = 8.0
SAMPLE_SECONDS = 1.0
_WORKER_MAIN = "import sys; from resumable_triggers._bench._worker import main; sys.exit(main(sys.argv))"


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSettings:
    """What one phase runs; the main phase ignores ``storm_seconds`` and the emulator's limit, the storm
    ``lead_seconds``, ``spread_seconds`` and ``failure_every`` (its runs outlive it)."""

    implementation: str  # "ours" or "provider"
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


def run_main_phase(settings: PhaseSettings, workdir: Path) -> MainResult:
    """Run one main phase end to end; every process it starts is stopped before it returns."""
    with _measured(settings, workdir, storm=False) as m:
        ends = {int(r["run_id"]): r["end_time"] / 1000 for r in m.control.runs() if r.get("end_time")}
        return main_metrics(settings, m.result, m.samples, m.before, m.after, m.plan, m.run_ids, ends)


def run_storm_phase(settings: PhaseSettings, workdir: Path) -> StormResult:
    """Run one restart storm end to end; every process it starts is stopped before it returns."""
    with _measured(settings, workdir, storm=True) as m:
        log = m.control.request_log
        started = m.result["started_at"]
        records = [r for r in log if r.time >= started]
        return storm_metrics(
            settings,
            m.result,
            m.samples,
            m.before,
            m.after,
            records,
            workdir,
            m.run_ids,
            # The emulator keeps its last 10,000 requests: older storm requests would be missing.
            request_log_truncated=bool(log) and log[0].time >= started,
        )


@dataclass(frozen=True, slots=True)
class _Measurement:
    """What a phase collected; ``control`` still reaches its emulator (for the runs and the log)."""

    control: EmulatorControl
    result: dict[str, Any]  # the worker's WorkerResult, as JSON
    samples: Samples
    before: Counters
    after: Counters
    plan: RunPlan
    run_ids: list[int]


@contextlib.contextmanager
def _measured(settings: PhaseSettings, workdir: Path, *, storm: bool) -> Iterator[_Measurement]:
    workdir.mkdir(parents=True, exist_ok=True)
    with EmulatorProcess(run_seconds=3600.0) as emulator:
        control = EmulatorControl(emulator.url, timeout_seconds=120.0)
        [warmup_run_id] = asyncio.run(
            submit_runs(
                emulator.url, emulator.token, RunPlan(ends_at=(time.time() + 0.5,), outcomes=("SUCCESS",))
            )
        )
        deadline = (
            settings.storm_seconds
            if storm
            else settings.lead_seconds + settings.spread_seconds + 3 * (settings.poll_seconds) + 30.0
        )
        worker_settings = WorkerSettings(
            implementation=settings.implementation,
            mode="storm" if storm else "main",
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
            yield _Measurement(control, result, sampler.samples, before, after, plan, run_ids)


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

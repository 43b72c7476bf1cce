"""The memory phase: K trigger processes per implementation, each adding triggers in steps.

Each repeat gets a fresh emulator process and a fresh trigger process (as the other phases do), long
runs for the largest step, and the worker's ``memory`` mode; ``_memory`` makes a slope of each
repeat's steps and a spread of the slopes. The repeats of the two implementations alternate, so a
machine that gets busier meanwhile (other people's tests on the same cores) weighs on both alike.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from resumable_triggers._bench._memory import memory, memory_repeat, memory_result
from resumable_triggers._bench._phase import PREPARE_SECONDS, _Worker
from resumable_triggers._bench._results import Memory, MemoryRepeat
from resumable_triggers._bench._worker import WorkerSettings
from resumable_triggers._bench._workload import RunPlan, submit_runs
from resumable_triggers.testing import EmulatorProcess

# The runs outlast the phase by far: every trigger finds its run active at every step.
RUN_SECONDS = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MemorySettings:
    """``steps``: trigger counts measured at, ascending (at least two); ``repeats``: processes per
    implementation; ``settle_seconds``: the wait after each step (None: 3 s + 1 s per 250 triggers)."""

    steps: tuple[int, ...]
    repeats: int
    poll_seconds: float
    requests_per_second: float
    greenback: bool
    settle_seconds: float | None = None

    def __post_init__(self) -> None:
        if len(self.steps) < 2 or list(self.steps) != sorted(set(self.steps)) or self.steps[0] < 1:
            raise ValueError(f"memory steps must be two or more ascending counts >= 1, got {self.steps!r}")
        if self.repeats < 1:
            raise ValueError(f"memory repeats must be >= 1, got {self.repeats!r}")


def run_memory_phase(settings: MemorySettings, implementations: Sequence[str], workdir: Path) -> Memory:
    """Every repeat of every implementation, alternating; ``implementations`` starts with "ours"."""
    repeats: dict[str, list[MemoryRepeat]] = {name: [] for name in implementations}
    for index in range(settings.repeats):
        for name in implementations:
            print(
                f"bench: {name} memory, repeat {index + 1} of {settings.repeats}, "
                f"{', '.join(map(str, settings.steps))} triggers...",
                file=sys.stderr,
                flush=True,
            )
            repeats[name].append(_repeat(settings, name, workdir / f"{name}-memory-{index + 1}"))
    results = {
        name: memory_result(name, done, poll_seconds=settings.poll_seconds, greenback=settings.greenback)
        for name, done in repeats.items()
    }
    return memory(results["ours"], results.get("provider"))


def _repeat(settings: MemorySettings, implementation: str, workdir: Path) -> MemoryRepeat:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    largest = settings.steps[-1]
    settle = settings.settle_seconds
    if settle is None:
        settle = 3.0 + largest / 250
    with EmulatorProcess(run_seconds=RUN_SECONDS) as emulator:
        [warmup_run_id] = asyncio.run(
            submit_runs(
                emulator.url, emulator.token, RunPlan(ends_at=(time.time() + 0.5,), outcomes=("SUCCESS",))
            )
        )
        worker_settings = WorkerSettings(
            implementation=implementation,
            mode="memory",
            poll_seconds=settings.poll_seconds,
            requests_per_second=settings.requests_per_second,
            deadline_seconds=0.0,
            storm_seconds=0.0,
            greenback=settings.greenback,
            log_file=str(workdir / "triggers.log.jsonl"),
            result=str(workdir / "worker-result.json"),
            warmup_run_id=warmup_run_id,
            memory_steps=settings.steps,
            settle_seconds=settle,
        )
        with _Worker(worker_settings, emulator.url, emulator.token, workdir) as worker:
            ends = time.time() + PREPARE_SECONDS + RUN_SECONDS
            plan = RunPlan(ends_at=(ends,) * largest, outcomes=("SUCCESS",) * largest)
            run_ids = asyncio.run(submit_runs(emulator.url, emulator.token, plan))
            worker.read("ready", timeout_seconds=180.0)
            ids_file = workdir / "run-ids.json"
            ids_file.write_text(json.dumps(run_ids))
            worker.send({"go": str(ids_file)})
            worker.read("done", timeout_seconds=len(settings.steps) * (settle + 60.0) + 120.0)
        points = json.loads(Path(worker_settings.result).read_text())
    return memory_repeat(
        points["triggers"], points["rss_bytes"], points["traced_bytes"], time.monotonic() - started
    )

"""``resumable-triggers bench-slots`` on a real Airflow at toy size: correctness only, never the numbers.

Two mapped tasks per implementation, runs of 5 s polled every second, on SQLite (the quickest
deployment to start), the three DAGs at once (``--together``: one run length instead of three). What
must hold at any size: every task succeeded having submitted exactly one run, the deferrable
operators (ours and the provider's) held a worker slot in two segments and the synchronous durable one
in a single one, and Airflow's audit log agrees with the processes: each of its segments lies inside
the process segment the sampler saw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resumable_triggers._bench._slots._results import DURABLE, IMPLEMENTATIONS, SlotsReport
from resumable_triggers._cli import main

# About a minute on an idle machine (an estimate); it took 4 minutes at load 25 on 2 cores.
pytestmark = pytest.mark.timeout(480)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-slots")
    code = main(
        [
            "bench-slots",
            "--tasks", "2",
            "--run-seconds", "5",
            "--poll-seconds", "1",
            "--database", "sqlite",
            "--together",
            "--json", str(out / "slots.json"),
            "--plot", str(out / "slots.png"),
        ]
    )  # fmt: skip
    assert 0 == code  # run() returns 1 when report.problems() names any
    assert (out / "slots.png").stat().st_size > 10_000
    return out / "slots.json"


@pytest.fixture(scope="module")
def report(report_file: Path) -> SlotsReport:
    return SlotsReport.from_json(json.loads(report_file.read_text()))


def test_every_task_succeeded_with_one_run_at_the_emulator(report: SlotsReport) -> None:
    """Each implementation's two mapped tasks ended ``success``, each having submitted one run."""
    assert {impl: [("success", 1)] * 2 for impl in IMPLEMENTATIONS} == {
        r.implementation: [(a.state, a.emulator_runs) for a in r.attempts] for r in report.implementations
    }


def test_deferrable_tries_hold_two_segments_and_the_durable_one_a_single_one(report: SlotsReport) -> None:
    """Start -> deferred and resume -> finish for ours and the provider's deferrable operator; the
    synchronous durable operator holds its slot in one piece, so it has no segment 2."""
    expected = {impl: {"1" if impl == DURABLE else "2": 2} for impl in IMPLEMENTATIONS}
    assert expected == {r.implementation: dict(r.slot.segments_per_attempt) for r in report.implementations}
    assert expected == {r.implementation: dict(r.audit.segments_per_attempt) for r in report.implementations}
    assert 0 == report.by_implementation()[DURABLE].slot.segment_2.count


def test_the_audit_log_segments_lie_inside_the_process_segments(report: SlotsReport) -> None:
    """The cross-check: what the API server recorded (running -> deferred / success) happened while
    the sampler saw the try's processes, for every segment of every task."""
    assert all(a.audit_inside for r in report.implementations for a in r.attempts)


def test_every_task_has_a_latency_from_its_run_end_to_success(report: SlotsReport) -> None:
    """The run's end at the emulator and the task's end date are both known for every task."""
    assert all(a.latency_seconds is not None for r in report.implementations for a in r.attempts)
    assert all(r.latency.count == 2 for r in report.implementations)


def test_report_reads_back_and_writes_the_same_json(report_file: Path) -> None:
    """What ``--json`` wrote loads into a SlotsReport and writes back byte for byte, with ratios
    against ours for both of the provider's operators and the command that reproduces it."""
    typed = SlotsReport.from_json(json.loads(report_file.read_text()))
    assert report_file.read_text() == json.dumps(typed.to_json(), indent=1) + "\n"
    assert {"provider-durable", "provider-deferrable"} == {r.numerator for r in typed.ratios}
    assert typed.bench.command.startswith("resumable-triggers bench-slots --tasks 2 --run-seconds 5.0")

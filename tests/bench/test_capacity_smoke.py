"""``resumable-triggers bench-capacity`` end to end at toy size: shape and verdicts, never timings.

A workspace limit of 5 req/s at a 1 s interval: the provider's trigger (one runs/get per run per
interval) can watch at most R * S = 5 runs, so 16 runs overrun the limit by three times; ours lists
16 runs in one page a sweep, far below it. Each size and implementation gets its own emulator and
trigger process, as at full size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resumable_triggers._bench._capacity_results import CapacityReport
from resumable_triggers._cli import main

pytestmark = pytest.mark.timeout(300)

SIZES = (4, 16)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("capacity")
    code = main(
        [
            "bench-capacity",
            "--limit", "5",
            "--poll-seconds", "1",
            "--sizes", ",".join(map(str, SIZES)),
            "--compare", "provider",
            "--minutes-per-size", "0.08",
            "--json", str(out / "capacity.json"),
            "--plot", str(out / "capacity.png"),
        ]
    )  # fmt: skip
    assert 0 == code
    assert (out / "capacity.png").stat().st_size > 10_000
    return out / "capacity.json"


@pytest.fixture(scope="module")
def report(report_file: Path) -> CapacityReport:
    return CapacityReport.from_json(json.loads(report_file.read_text()))


def test_each_implementation_is_measured_at_every_size(report: CapacityReport) -> None:
    """One point per size per implementation, in ascending order, each with its own probes."""
    assert report.provider is not None
    assert [list(SIZES), list(SIZES)] == [[p.runs for p in c.points] for c in report.curves()]
    assert all(p.probes >= 1 and p.requests_total > 0 for c in report.curves() for p in c.points)


def test_the_provider_overrunning_the_limit_is_throttled_and_ours_never_is(report: CapacityReport) -> None:
    """16 runs polled one by one every second against 5 req/s get 429s; ours, with the limit as its
    budget, gets none at any size, and none of its triggers fails."""
    assert report.provider is not None
    assert report.provider.points[-1].responses_429 > 0
    assert [0] * len(SIZES) == [p.responses_429 for p in report.ours.points]
    assert [0] * len(SIZES) == [p.triggers_failed for p in report.ours.points]


def test_each_capacity_is_a_measured_size_or_none_and_the_computed_one_is_r_times_s(
    report: CapacityReport,
) -> None:
    """Capacities come from the measured sizes (the provider's below 16, which failed); computed:
    5 * 1 / 1 for the provider, 5 * 1 * 25 for ours."""
    assert report.provider is not None
    assert report.provider.capacity in (None, 4)
    assert 16 == report.provider.first_failing_runs
    assert report.ours.capacity in SIZES
    assert (125, 5) == (report.ours.expected_capacity, report.provider.expected_capacity)


def test_the_json_reads_back_to_what_was_written(report_file: Path, report: CapacityReport) -> None:
    """The file the command wrote is what the typed report writes: nothing lost or renamed."""
    assert json.loads(report_file.read_text()) == report.to_json()

"""``resumable-triggers bench`` end to end at toy size: correctness only, never the numbers.

20 runs at a 1 s interval, our trigger and the provider's, each in its own trigger process against
its own emulator process. The numbers at this size mean nothing; what must hold at any size is that
every run's event arrives with the outcome the run was given, and that the report has its keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resumable_triggers._bench._results import BenchReport
from resumable_triggers._cli import main

pytestmark = pytest.mark.timeout(300)

METRICS = {
    "cpu_seconds",
    "rss_bytes_per_run",
    "connections_peak",
    "requests_per_run_interval",
    "loop_lag_max_seconds",
    "detection_latency_p50_seconds",
    "detection_latency_p99_seconds",
    "errors",
}


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    code = main(
        [
            "bench",
            "--runs", "20",
            "--poll-seconds", "1",
            "--compare", "provider",
            "--spread-seconds", "3",
            "--storm-seconds", "4",
            "--memory-steps", "4,8",
            "--memory-repeats", "2",
            "--memory-settle-seconds", "1",
            "--json", str(out / "bench.json"),
            "--plot", str(out / "bench.png"),
        ]
    )  # fmt: skip
    assert 0 == code
    assert (out / "bench.png").stat().st_size > 10_000
    return out / "bench.json"


@pytest.fixture(scope="module")
def report(report_file: Path) -> dict:
    return json.loads(report_file.read_text())


@pytest.mark.parametrize("implementation", ["ours", "provider"])
def test_every_run_fires_its_event_with_the_outcome_it_was_given(report: dict, implementation: str) -> None:
    """Each of the 20 runs fired exactly one event, one in 20 FAILED as planned, the rest SUCCESS."""
    measured = report[implementation]
    assert (20, 0, {"SUCCESS": 19, "FAILED": 1}) == (
        measured["events"],
        measured["errors"],
        measured["outcomes"],
    )


@pytest.mark.parametrize("implementation", ["ours", "provider"])
def test_report_has_every_metric_the_issue_names(report: dict, implementation: str) -> None:
    """The JSON carries each metric, for each implementation, as a number."""
    measured = report[implementation]
    assert set() == METRICS - measured.keys()
    assert all(isinstance(measured[key], int | float) for key in METRICS)


def test_restart_storm_polls_every_run_without_being_throttled(report: dict) -> None:
    """The storm section reports our triggers' first polls and the 429s they got (none: our budget is
    below the emulator's limit)."""
    storm = report["restart_storm"]["ours"]
    assert (20, 0) == (storm["runs_polled"], storm["responses_429"])
    assert storm["within_budget"]


def test_report_says_how_to_reproduce_it(report: dict) -> None:
    """The report names the command, the machine and the versions it was measured with."""
    bench = report["bench"]
    assert bench["command"].startswith("resumable-triggers bench --runs 20 --poll-seconds 1.0")
    assert {"cpus", "memory_bytes", "platform"} <= bench["machine"].keys()
    assert "apache-airflow-providers-databricks" in bench["versions"]


def test_report_reads_back_into_typed_values_and_writes_the_same_json(report_file: Path) -> None:
    """What ``--json`` wrote loads into a BenchReport and writes back byte for byte, with the schedule
    each phase ran."""
    typed = BenchReport.from_json(json.loads(report_file.read_text()))
    assert report_file.read_text() == json.dumps(typed.to_json(), indent=1) + "\n"
    assert typed.ours is not None
    assert (3.0, 3.0) == (typed.ours.lead_seconds, typed.ours.spread_seconds)


def test_memory_phase_fits_a_slope_per_repeat_for_each_implementation(report_file: Path) -> None:
    """Two repeats each, measured at 4 and 8 triggers: every repeat has both steps and a slope, and
    the comparison gives a verdict (a number or "within noise": at this size, anything)."""
    typed = BenchReport.from_json(json.loads(report_file.read_text()))
    assert typed.memory is not None
    assert typed.memory.provider is not None
    assert typed.memory.comparison is not None
    for result in (typed.memory.ours, typed.memory.provider):
        assert [(4, 8)] * 2 == [r.triggers for r in result.repeats]
        assert 2 == len(result.rss_bytes_per_trigger.values)
    assert typed.memory.comparison.rss_bytes_per_trigger.verdict


def test_bench_module_exposes_the_cli_contract() -> None:
    """``resumable-triggers bench`` dispatches to a module with add_arguments and run."""
    import resumable_triggers._bench as bench

    assert ["add_arguments", "run"] == sorted(bench.__all__)
    assert Path(bench.__file__).parent.name == "_bench"

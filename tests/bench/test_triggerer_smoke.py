"""``resumable-triggers bench-triggerer`` end to end at toy size: correctness of the report, never numbers.

One real Airflow (PostgreSQL, no scheduler), two phases: ours and the provider's at 8 deferred
tasks with ``[triggerer] capacity`` 5, so that the capacity binds (``--no-raise-capacity``: the
re-run at a raised capacity, which ``plan_phases`` adds otherwise, is left out to keep the test
short). What must hold at any size: every run's event reaches its task instance with the outcome
the run ended with, the report has its keys, and it names the limit that bound.
"""

from __future__ import annotations

import json

import pytest

from resumable_triggers._bench._triggerer._results import TriggererReport
from resumable_triggers._cli import main

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> TriggererReport:
    out = tmp_path_factory.mktemp("bench-triggerer")
    code = main(
        [
            "bench-triggerer",
            "--sizes", "8",
            "--compare", "provider",
            "--compare-sizes", "8",
            "--capacity", "5",
            "--no-raise-capacity",
            "--poll-seconds", "1",
            "--lead-seconds", "4",
            "--spread-seconds", "2",
            "--failure-every", "3",
            "--json", str(out / "report.json"),
            "--plot", str(out / "report.png"),
        ]
    )  # fmt: skip
    assert 0 == code
    assert (out / "report.png").stat().st_size > 10_000
    return TriggererReport.from_json(json.loads((out / "report.json").read_text()))


def test_every_event_arrives_with_the_runs_outcome(report: TriggererReport) -> None:
    """Each phase delivered one event per task, none wrong or missing: every third run FAILED."""
    assert [("ours", 8), ("provider", 8)] == [(p.implementation, p.triggers) for p in report.phases]
    for p in report.phases:
        failed = len(range(0, p.triggers, 3))
        expected = {"FAILED": failed, "SUCCESS": p.triggers - failed}
        assert (p.triggers, 0, 0, expected) == (p.events, p.wrong_outcomes, p.undelivered, dict(p.outcomes))
        assert p.triggers == len(p.latencies_seconds)


def test_report_says_capacity_bound_first(report: TriggererReport) -> None:
    """At 8 tasks and capacity 5 each triggerer took exactly 5 at once, and the report says the
    capacity bound first, for both, and that the comparison is between capacity-bound phases."""
    assert [(5, 5, "capacity")] * 2 == [(p.capacity, p.peak_assigned, p.limit_bound) for p in report.phases]
    assert report.comparison is not None
    assert (8, True) == (report.comparison.triggers, report.comparison.capacity_bound)


def test_report_has_the_tree_measures_and_the_comparison(report: TriggererReport) -> None:
    """The tree was measured (CPU, RSS above idle, sockets to the workspace and PostgreSQL), the
    stalls Airflow logged were counted, and provider / ours is given."""
    for p in report.phases:
        assert p.processes_peak >= 2  # the supervisor and its trigger runner
        assert p.rss_peak_bytes >= p.rss_idle_bytes > 0
        assert p.database_connections_peak >= 1
        assert p.workspace_connections_peak >= 1
        assert (p.stalls == 0) == (p.stall_max_seconds is None)
        assert len(p.series.t) == len(p.series.assigned) == len(p.series.rss_bytes) > 0
    assert report.comparison is not None
    assert report.comparison.cpu_seconds is not None

"""``bench-triggerer``'s pure parts: which phases run, which limit bound, what Airflow's log and StatsD
say, the report's JSON and table. No Airflow process is started here."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from resumable_triggers._bench._results import Machine, Provenance
from resumable_triggers._bench._triggerer._phase import event_outcome
from resumable_triggers._bench._triggerer._plot import plot
from resumable_triggers._bench._triggerer._report import (
    AIRFLOW_DEFAULT_CAPACITY,
    PhaseKey,
    binding_limit,
    comparable,
    comparison,
    percentile,
    plan_phases,
    rss_slope,
    table,
    verdicts,
)
from resumable_triggers._bench._triggerer._results import TreeSeries, TriggererPhase, TriggererReport
from resumable_triggers._bench._triggerer._signals import (
    Metric,
    MetricTotals,
    StatsdListener,
    parse_stalls,
    parse_statsd,
)

# A line of a real triggerer's log (Airflow 3.3.2, text renderer), the stall Airflow reports.
STALL_LINE = (
    "2026-12-01T17:48:31.346511Z [info     ] Triggerer's async thread was blocked for 6.80 seconds, "
    "exceeding the configured warning threshold of 0.20 seconds. This is likely caused by a "
    "badly-written trigger. Set PYTHONASYNCIODEBUG=1 to get more information on overrunning "
    "coroutines. [airflow.jobs.triggerer_job_runner] loc=triggerer_job_runner.py:1046"
)


def test_default_capacity_is_airflows() -> None:
    """The capacity the report assumes when none is given is the installed Airflow's default."""
    from airflow.configuration import conf

    assert int(conf.get_default_value("triggerer", "capacity")) == AIRFLOW_DEFAULT_CAPACITY


def test_stall_message_is_the_one_airflow_logs() -> None:
    """The pattern matches the sentence in Airflow's own source, so a reworded message fails here."""
    import airflow.jobs.triggerer_job_runner as runner

    source = Path(runner.__file__).read_text()
    assert "Triggerer's async thread was blocked for %.2f seconds" in source
    assert "triggers.blocked_main_thread" in source
    assert (6.8,) == parse_stalls(STALL_LINE)


def test_stalls_are_read_in_order_and_other_lines_ignored() -> None:
    """Every stall line gives its length; other lines (triggers running, errors) give nothing."""
    text = "\n".join([STALL_LINE, "0 triggers currently running", STALL_LINE.replace("6.80", "0.25")])
    assert (6.8, 0.25) == parse_stalls(text)


def test_statsd_lines_lose_prefix_and_tags() -> None:
    """Counters, gauges with InfluxDB or DogStatsD tags and a sampled timer parse; junk is skipped."""
    datagram = "\n".join(
        [
            "airflow.triggers.blocked_main_thread:1|c",
            "airflow.triggers.running,hostname=h:42|g",
            "airflow.triggerer.capacity_left:958|g|#hostname:h",
            "airflow.dag_processing.last_duration:3.5|ms|@0.5",
            "garbage",
            "airflow.x:notanumber|c",
        ]
    )
    assert (
        Metric("triggers.blocked_main_thread", 1.0, "c"),
        Metric("triggers.running", 42.0, "g"),
        Metric("triggerer.capacity_left", 958.0, "g"),
        Metric("dag_processing.last_duration", 3.5, "ms"),
    ) == parse_statsd(datagram)


def test_totals_sum_counters_and_keep_gauge_extremes() -> None:
    """Counters add up; a gauge keeps its last, highest and lowest value."""
    totals = MetricTotals()
    totals.add([Metric("c", 1, "c"), Metric("g", 5, "g"), Metric("c", 2, "c"), Metric("g", 3, "g")])
    assert ({"c": 3.0}, {"g": 3.0}, {"g": 5.0}, {"g": 3.0}) == (
        totals.counters,
        totals.gauge_last,
        totals.gauge_max,
        totals.gauge_min,
    )


def test_listener_collects_what_is_sent_over_udp() -> None:
    """A datagram sent to the listener's port on 127.0.0.1 shows in its totals; reset() clears them."""
    with StatsdListener() as listener, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"airflow.triggers.running:7|g", ("127.0.0.1", listener.port))
        assert listener.wait_for("triggers.running", timeout_seconds=10)
        assert 7.0 == listener.totals().gauge_max["triggers.running"]
        listener.reset()
        assert {} == listener.totals().gauge_last


def test_a_size_above_capacity_runs_bound_then_raised() -> None:
    """Ours and the provider back to back at the compared size; a size above the capacity runs at
    the capacity and again with it raised; nothing runs twice."""
    keys = plan_phases(
        sizes=(1000, 5000), compare_sizes=(1000,), compare=True, capacity=1000, raise_capacity=True
    )
    assert [
        PhaseKey("ours", 1000, 1000),
        PhaseKey("provider", 1000, 1000),
        PhaseKey("ours", 5000, 1000),
        PhaseKey("ours", 5000, 5000),
    ] == keys
    assert [PhaseKey("ours", 5000, 1000)] == plan_phases(
        sizes=(5000,), compare_sizes=(1000,), compare=False, capacity=1000, raise_capacity=False
    )


@pytest.mark.parametrize(
    ("asked", "capacity", "peak", "cpu", "expected"),
    [
        (5000, 1000, 1000, 0.3, "capacity"),
        (1000, 1000, 640, 0.3, "pickup"),
        (1000, 1000, 1000, 0.95, "cpu"),
        (1000, 1000, 1000, 0.3, "none"),
        (1000, 1000, 1000, None, "none"),
    ],
)
def test_binding_limit(asked: int, capacity: int, peak: int, cpu: float | None, expected: str) -> None:
    """Capacity binds when the triggerer stopped at it; pick-up when it allowed more than ever ran."""
    assert expected == binding_limit(
        asked=asked, capacity=capacity, peak_assigned=peak, cpu_core_fraction=cpu
    )


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..10 is 5, p99 is 10; no values, no percentile."""
    values = [float(v) for v in range(10, 0, -1)]
    assert (5.0, 10.0, None) == (percentile(values, 50), percentile(values, 99), percentile([], 50))


def test_event_outcomes_of_both_triggers() -> None:
    """Our event's result state, the provider's JSON-in-a-string run state, and what is no event."""
    assert "FAILED" == event_outcome("ours", {"outcome": "failed", "result_state": "FAILED"})
    assert "WATCH_ERROR" == event_outcome("ours", {"outcome": "watch_error"})
    provider = {"run_state": '{"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}'}
    assert "SUCCESS" == event_outcome("provider", provider)
    assert "NO_EVENT" == event_outcome("provider", None)


def _phase(implementation: str, triggers: int, capacity: int, **changes: object) -> TriggererPhase:
    phase = TriggererPhase(
        implementation=implementation,
        triggers=triggers,
        capacity=capacity,
        capacity_is_default=False,
        poll_seconds=30.0,
        lead_seconds=90.0,
        spread_seconds=900.0,
        wall_seconds=1000.0,
        seed_seconds=20.0,
        peak_assigned=min(triggers, capacity),
        ramp_seconds=20.0,
        limit_bound="capacity" if triggers > capacity else "none",
        cpu_seconds=100.0,
        cpu_core_fraction=0.1,
        rss_idle_bytes=400 * 2**20,
        rss_peak_bytes=400 * 2**20 + 8192 * min(triggers, capacity),
        rss_bytes_per_task=8192.0,
        processes_peak=3,
        workspace_connections_peak=2,
        database_connections_peak=3,
        stalls=1,
        stall_max_seconds=2.0,
        stall_total_seconds=2.0,
        metrics_blocked_main_thread=None,
        metrics_running_peak=None,
        metrics_capacity_left_min=None,
        events=triggers,
        wrong_outcomes=0,
        undelivered=0,
        error_details=(),
        outcomes={"SUCCESS": triggers},
        latency_p50_seconds=15.0,
        latency_p99_seconds=31.0,
        latency_max_seconds=32.0,
        latencies_seconds=(15.0, 31.0),
        series=TreeSeries(
            t=(0.0, 1.0), cpu_core_fraction=(0.0, 0.1), rss_bytes=(1.0, 2.0), assigned=(0, 1), deferred=(1, 0)
        ),
    )
    return dataclasses.replace(phase, **changes)  # type: ignore[arg-type]


def _report() -> TriggererReport:
    ours = _phase("ours", 1000, 1000)
    provider = _phase("provider", 1000, 1000, cpu_seconds=400.0, rss_bytes_per_task=40960.0, stalls=4)
    machine = Machine(cpus=2, cpu_model="x", memory_bytes=1, platform="p", python="3.11", summary="2 cores")
    return TriggererReport(
        bench=Provenance(date="d", command="c", machine=machine, versions={}, settings={}),
        statsd=False,
        phases=(ours, provider, _phase("ours", 5000, 1000), _phase("ours", 5000, 5000)),
        comparison=comparison(ours, provider),
        rss_slope_bytes_per_task=rss_slope([ours, _phase("ours", 5000, 5000)]),
    )


def test_comparison_prefers_the_phase_capacity_did_not_bind() -> None:
    """At a size run twice, the raised-capacity phase is compared; with only a bound one, that one,
    and the comparison says so."""
    bound, raised = _phase("ours", 5000, 1000), _phase("ours", 5000, 5000)
    assert raised == comparable([bound, raised], "ours", 5000)
    assert bound == comparable([bound], "ours", 5000)
    assert None is comparable([bound], "provider", 5000)
    assert comparison(bound, _phase("provider", 5000, 1000)).capacity_bound


def test_ratios_are_provider_over_ours_and_slope_is_per_task() -> None:
    """4x the CPU, 5x the memory per task, 4x the stalls; the slope over sizes is 8 KiB per task."""
    report = _report()
    assert report.comparison is not None
    assert (4.0, 5.0, 4.0, 1.0) == (
        report.comparison.cpu_seconds,
        report.comparison.rss_bytes_per_task,
        report.comparison.stalls,
        report.comparison.workspace_connections_peak,
    )
    assert 8192.0 == report.rss_slope_bytes_per_task


def test_report_round_trips_through_json() -> None:
    """What ``--json`` writes reads back into the same typed report."""
    report = _report()
    assert report == TriggererReport.from_json(report.to_json())


def test_table_and_verdicts_name_the_limit(tmp_path: Path) -> None:
    """The table has a column per phase and the ratio column; the verdicts say capacity bound at 5,000."""
    report = _report()
    text = table(report)
    assert "provider / ours at 1,000" in text
    assert "| limit that bound first | none | none | capacity | none |  |" in text
    assert (
        "ours 5,000 (capacity 1,000): [triggerer] capacity bound first: 1,000 of 5,000 tasks ran at once"
        in (verdicts(report))
    )
    plot(report, str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000

"""A ``bench-capacity`` size measured from a synthetic request log, and the report built from such
sizes: its JSON round trip, its Markdown table, its plot."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from resumable_triggers._bench._capacity import add_arguments, capacity_ratio, curve, estimated_minutes
from resumable_triggers._bench._capacity_phase import CapacitySettings, capacity_point, probe_offsets
from resumable_triggers._bench._capacity_plot import plot
from resumable_triggers._bench._capacity_results import CapacityPoint, CapacityReport
from resumable_triggers._bench._capacity_table import table
from resumable_triggers._bench._capacity_windows import LogMerge
from resumable_triggers._bench._results import Machine, Provenance
from resumable_triggers.testing import RequestRecord

STARTED = 100.0


def settings(implementation: str = "provider", runs: int = 2) -> CapacitySettings:
    # 2 s warm-up, 6 s measured: the window is [100, 108), the measured stretch [102, 108).
    return CapacitySettings(
        implementation=implementation,
        runs=runs,
        poll_seconds=1.0,
        limit_requests_per_second=5.0,
        limit_burst=5,
        requests_per_second=5.0,
        measured_seconds=6.0,
        slack_seconds=2.0,
    )


def polls() -> list[RequestRecord]:
    """Run 12 polled every second; probe 11 polled until it ends, one of its polls throttled; a 429
    in the warm-up; the orchestrator's own submission and a request after the window, both ignored."""
    return [
        RequestRecord("POST", "runs/submit", 200, 99.0),
        *(RequestRecord("GET", "runs/get", 200, STARTED + s, 12) for s in range(8)),
        RequestRecord("GET", "runs/get", 429, 100.5, None, "rate_limit"),
        RequestRecord("GET", "runs/get", 200, 102.2, 11),
        RequestRecord("GET", "runs/get", 429, 103.2, None, "rate_limit"),
        RequestRecord("GET", "runs/get", 200, 104.2, 11),
        RequestRecord("GET", "runs/get", 200, 108.5, 12),
    ]


def worker_result(events: dict[str, Any] | None = None, errors: list[str] | None = None) -> dict[str, Any]:
    return {
        "started_at": STARTED,
        "events": {"11": [104.5, "SUCCESS"]} if events is None else events,
        "errors": errors or [],
    }


def point(implementation: str = "provider", **result: Any) -> CapacityPoint:
    return capacity_point(
        settings(implementation),
        worker_result(**result),
        LogMerge(tuple(polls())),
        run_ids=[11, 12],
        probe_ends={11: 104.0},
        probes=1,
    )


def test_a_size_counts_its_429s_per_interval_and_its_rates_over_the_measured_stretch() -> None:
    """Both 429s count (warm-up too), per 1 s interval; the 9 requests of [102, 108) make 1.5 req/s
    and 0.75 per run-interval, at most 2 in any second; the probe was seen 0.5 s after it ended;
    run 12 never waited more than 1 s for a poll."""
    p = point()
    assert (2, (1, 0, 0, 1, 0, 0, 0, 0)) == (p.responses_429, p.responses_429_per_interval)
    assert (9, 1.5, 0.75, 2) == (
        p.requests_total,
        p.requests_per_second_mean,
        p.requests_per_run_interval,
        p.requests_per_second_max_1s,
    )
    assert (1, 1, 0.5, 1.0, True, 0) == (
        p.probes,
        p.probes_detected,
        p.detection_latency_max_seconds,
        p.poll_gap_max_seconds,
        p.polled_within_interval,
        p.triggers_failed,
    )


def test_an_unseen_probe_and_a_trigger_that_gave_up_fail_the_size() -> None:
    """The probe's event never came, run 12's trigger raised: not polled in time, one trigger failed."""
    p = point(events={}, errors=["run 12: ClientResponseError: 429"])
    assert (0, False, 1, ("run 12: ClientResponseError: 429",)) == (
        p.probes_detected,
        p.polled_within_interval,
        p.triggers_failed,
        p.failure_details,
    )


def test_an_event_for_a_run_that_never_ended_is_a_trigger_that_gave_up() -> None:
    """Ours reports giving up as a WATCH_ERROR event: on a run that outlives the window, a failure."""
    p = point("ours", events={"11": [104.5, "SUCCESS"], "12": [105.0, "WATCH_ERROR"]})
    assert (1, ("run 12: WATCH_ERROR",)) == (p.triggers_failed, p.failure_details)


def test_ours_is_judged_by_its_probes_alone() -> None:
    """Ours lists runs in pages: per-run gaps are not read (None), the probe decides; its budget is
    recorded (the provider's trigger has none)."""
    p = point("ours")
    assert (None, True, 5.0) == (
        p.poll_gap_max_seconds,
        p.polled_within_interval,
        p.budget_requests_per_second,
    )


def test_probes_end_inside_the_measured_stretch_with_time_to_be_seen() -> None:
    """Ten probes over [2, 8 - 1 - 2 - 1): evenly spaced midpoints, the last before the window's
    last interval + slack + 1 s; a stretch too short for any probe is refused."""
    offsets = probe_offsets(settings(runs=100))
    assert (10, 2.1, 3.9) == (len(offsets), round(offsets[0], 6), round(offsets[-1], 6))
    with pytest.raises(ValueError, match="measure at least"):
        probe_offsets(dataclasses.replace(settings(), measured_seconds=3.0))


def unthrottled(p: CapacityPoint, runs: int) -> CapacityPoint:
    return dataclasses.replace(p, runs=runs, responses_429=0, responses_429_per_interval=(0,) * 8)


def report() -> CapacityReport:
    ok = unthrottled(point(), 2)
    throttled = dataclasses.replace(ok, runs=16, responses_429=12, polled_within_interval=False)
    ours = [unthrottled(point("ours"), n) for n in (2, 16)]
    machine = Machine(
        cpus=2, cpu_model="test", memory_bytes=2**30, platform="linux", python="3.11", summary="2 cores"
    )
    return CapacityReport(
        bench=Provenance(
            date="2026-12-01 18:00 UTC",
            command="resumable-triggers bench-capacity",
            machine=machine,
            versions={"resumable-triggers": "0"},
            settings={"limit": 5.0, "sizes": [2, 16]},
        ),
        limit_requests_per_second=5.0,
        limit_burst=5,
        poll_seconds=1.0,
        slack_seconds=2.0,
        ours=curve("ours", ours, limit=5.0, poll_seconds=1.0),
        provider=curve("provider", [throttled, ok], limit=5.0, poll_seconds=1.0),
        capacity_ratio=8.0,
    )


def test_the_report_reads_back_equal_from_its_json() -> None:
    """to_json, through a JSON string, from_json: the same typed report, tuples and all."""
    written = report()
    assert written == CapacityReport.from_json(json.loads(json.dumps(written.to_json())))


def test_a_report_missing_a_key_names_where() -> None:
    """A point without its 429s is refused, naming the path to it."""
    raw = report().to_json()
    del raw["provider"]["points"][0]["responses_429"]
    with pytest.raises(ValueError, match=r"report\.provider\.points\[0\] lacks \['responses_429'\]"):
        CapacityReport.from_json(raw)


def test_the_curves_decide_each_capacity_and_compute_the_expected_one() -> None:
    """The provider's 16 got 429s: capacity 2, computed R * S = 5; ours passed both: at least 16,
    computed 5 * 1 * 25 = 125."""
    r = report()
    assert r.provider is not None
    assert ((2, 16, 5), (16, None, 125)) == (
        (r.provider.capacity, r.provider.first_failing_runs, r.provider.expected_capacity),
        (r.ours.capacity, r.ours.first_failing_runs, r.ours.expected_capacity),
    )


def test_the_table_has_a_row_per_size_and_implementation_and_both_capacities() -> None:
    """Four rows, ours before the provider at each size; the capacity lines say measured and computed."""
    text = table(report())
    rows = [line for line in text.splitlines() if line.startswith("| ") and "trigger" not in line]
    assert [("2", "ours"), ("2", "provider"), ("16", "ours"), ("16", "provider")] == [
        tuple(cell.strip() for cell in row.split("|")[1:3]) for row in rows
    ]
    assert "- provider: measured capacity 2 (next size, 16, failed); computed 5" in text
    assert "- ours: measured capacity at least 16" in text
    assert "- ours / provider, measured capacity in this run: at least (ours passed every size) 8x" in text


def test_the_plot_draws_the_curve(tmp_path: Path) -> None:
    """A PNG of some size comes out (its content is for people)."""
    plot(report(), str(tmp_path / "capacity.png"))
    assert (tmp_path / "capacity.png").stat().st_size > 10_000


def test_the_wall_time_estimate_counts_one_process_per_size_and_trigger() -> None:
    """The documented command: 9 sizes of ours, 6 of the provider's (up to 3,200), each a 20 s
    warm-up, 3 minutes measured and 20 s of overhead: 15 * 220 s = 55 minutes."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--compare", "provider", "--compare-up-to", "3200"])
    assert 55.0 == estimated_minutes(sorted(args.sizes), args)


def test_the_ratio_needs_the_providers_capacity_bracketed_by_a_failure() -> None:
    """16 / 2 when the provider failed at 16; no ratio when the provider passed every size (its
    capacity is only a lower bound, so the quotient bounds nothing) or was not measured."""
    r = report()
    assert r.provider is not None
    unbracketed = dataclasses.replace(r.provider, first_failing_runs=None)
    assert (8.0, None, None) == (
        capacity_ratio(r.ours, r.provider),
        capacity_ratio(r.ours, unbracketed),
        capacity_ratio(r.ours, None),
    )

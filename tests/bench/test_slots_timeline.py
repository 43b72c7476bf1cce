"""``bench-slots``' pure parts: segments from process samples and from the audit log, their
cross-check, the statistics and ratios, and the report's JSON round trip, on synthetic timelines."""

from __future__ import annotations

import dataclasses
import json

import pytest

from resumable_triggers._bench._results import Machine, Provenance
from resumable_triggers._bench._slots._report import problems, ratios, table
from resumable_triggers._bench._slots._results import (
    DEFERRABLE,
    DURABLE,
    OURS,
    Attempt,
    ImplementationResult,
    Percentiles,
    SlotsReport,
    SlotStats,
)
from resumable_triggers._bench._slots._timeline import (
    AuditEvent,
    AuditSegment,
    Sample,
    SeenProcess,
    Segment,
    audit_segments,
    contains,
    process_segments,
)


def timeline(*rows: tuple[str, ...]) -> list[Sample]:
    """One sample per second from t=100; each row lists what it shows as ``"ti:role:pid"``."""
    return [
        Sample(
            100.0 + i,
            tuple(SeenProcess(*(p.split(":")[0], p.split(":")[1], int(p.split(":")[2]))) for p in row),
        )
        for i, row in enumerate(rows)
    ]


def test_a_deferred_try_holds_its_slot_in_two_segments_split_by_the_gap() -> None:
    """Start -> deferred, a gap while the triggerer watches, resume -> finish: two segments, each
    estimated from the midpoints of the samples around it (one sample interval of resolution)."""
    samples = timeline(
        (),
        ("a:supervisor:10",),
        ("a:supervisor:10", "a:task:11"),
        (),
        (),
        ("a:supervisor:10", "a:task:12"),
        (),
    )
    [first, second] = process_segments(samples)["a"]
    assert (Segment(first_seen=101, last_seen=102, appeared_after=100, gone_by=103), 2.0) == (
        first,
        first.seconds,
    )
    assert (Segment(first_seen=105, last_seen=105, appeared_after=104, gone_by=106), 1.0) == (
        second,
        second.seconds,
    )


def test_a_durable_try_holds_one_segment_for_the_whole_run() -> None:
    """The synchronous operator's try is present in every sample from start to finish: one segment."""
    samples = timeline((), *[("d:supervisor:20", "d:task:21")] * 5, ())
    assert [5.0] == [s.seconds for s in process_segments(samples)["d"]]


def test_a_resume_within_one_sample_of_the_deferral_still_counts_as_a_second_segment() -> None:
    """No empty sample between the two: the new task process (another PID) starts the second segment,
    and so does another worker taking the resumption."""
    samples = timeline(
        ("a:supervisor:10", "a:task:11"),
        ("a:supervisor:10", "a:task:12"),
        ("b:supervisor:30", "b:task:31"),
        ("b:supervisor:40",),
    )
    segments = process_segments(samples)
    assert (2, 2) == (len(segments["a"]), len(segments["b"]))


def test_a_supervisor_seen_before_its_task_process_is_the_same_segment() -> None:
    """The supervisor appears first (it forks the task process after start-up): no split."""
    samples = timeline(("a:supervisor:10",), ("a:supervisor:10", "a:task:11"), ("a:supervisor:10",), ())
    assert [Segment(first_seen=100, last_seen=102, appeared_after=None, gone_by=103)] == process_segments(
        samples
    )["a"]


def test_audit_log_pairs_each_running_with_the_event_that_ended_it() -> None:
    """running/deferred/running/success gives two segments; another try and another task stay apart;
    a running without an end (still running) gives none."""
    events = [
        AuditEvent("0", 1, 10.0, "running"),
        AuditEvent("0", 1, 11.5, "deferred"),
        AuditEvent("0", 1, 30.0, "running"),
        AuditEvent("0", 1, 31.0, "success"),
        AuditEvent("1", 1, 12.0, "running"),
        AuditEvent("1", 2, 40.0, "running"),
        AuditEvent("1", 1, 50.0, "success"),
    ]
    assert {
        ("0", 1): [
            AuditSegment(start=10.0, end=11.5, ended_by="deferred"),
            AuditSegment(start=30.0, end=31.0, ended_by="success"),
        ],
        ("1", 1): [AuditSegment(start=12.0, end=50.0, ended_by="success")],
        ("1", 2): [],
    } == audit_segments(reversed(events))


@pytest.mark.parametrize(
    ("start", "end", "inside"),
    [(100.5, 102.5, True), (99.9, 102.0, False), (101.0, 103.0, False)],
)
def test_an_audit_segment_fits_a_process_segment_only_between_the_samples_that_did_not_show_it(
    start: float, end: float, inside: bool
) -> None:
    """The process segment seen at 101..102, absent at 100 and 103, can hold what Airflow recorded
    from 100.5 to 102.5, not anything that began by 100 or ended at 103."""
    outer = Segment(first_seen=101, last_seen=102, appeared_after=100, gone_by=103)
    assert inside == contains(outer, AuditSegment(start=start, end=end, ended_by="success"))


def test_slot_stats_take_percentiles_per_segment_and_of_the_total() -> None:
    """Segment 1 of every attempt, segment 2 of those that have one, and their sums; the count of
    attempts per number of segments."""
    stats = SlotStats.of([(1.0, 2.0), (3.0, 4.0), (5.0,)])
    assert (
        Percentiles(count=3, p50=3.0, p95=4.8, max=5.0),
        Percentiles(count=2, p50=3.0, p95=3.9, max=4.0),
    ) == (
        stats.segment_1,
        stats.segment_2,
    )
    assert (Percentiles(count=3, p50=5.0, p95=6.8, max=7.0), {"1": 1, "2": 2}) == (
        stats.total,
        stats.segments_per_attempt,
    )
    assert Percentiles(count=0, p50=None, p95=None, max=None) == SlotStats.of([()]).segment_2


def _result(implementation: str, segments: tuple[float, ...], latency: float) -> ImplementationResult:
    attempts = (
        Attempt(
            map_index=0,
            ti_id="00000000-0000-0000-0000-000000000000",
            state="success",
            segments=segments,
            audit_segments=segments,
            audit_inside=True,
            emulator_runs=1,
            latency_seconds=latency,
        ),
    )
    return ImplementationResult(
        implementation=implementation,
        operator="op",
        dag_id=f"dag_{implementation}",
        wall_seconds=12.0,
        attempts=attempts,
        slot=SlotStats.of([segments]),
        audit=SlotStats.of([segments]),
        latency=Percentiles.of([latency]),
    )


def _report() -> SlotsReport:
    results = {
        OURS: _result(OURS, (2.0, 1.0), 1.0),
        DEFERRABLE: _result(DEFERRABLE, (4.0, 2.0), 3.0),
        DURABLE: _result(DURABLE, (60.0,), 2.0),
    }
    machine = Machine(
        cpus=2, cpu_model="", memory_bytes=1, platform="linux", python="3.11", summary="2 cores"
    )
    return SlotsReport(
        bench=Provenance(date="2026-12-01 18:00 UTC", command="c", machine=machine, versions={}, settings={}),
        tasks=1,
        run_seconds=60.0,
        poll_seconds=5,
        sample_seconds=0.2,
        database="sqlite",
        together=False,
        implementations=tuple(results.values()),
        ratios=ratios(results),
    )


def test_ratios_divide_each_measure_by_ours_and_leave_what_one_side_lacks_empty() -> None:
    """durable / ours: 60 / 3 of the total; the durable operator has no segment 2, so no ratio."""
    by = {(r.measure, r.numerator): r.value for r in _report().ratios}
    assert (20.0, 2.0, None, 2.0, 3.0) == (
        by[("slot total per attempt p50", DURABLE)],
        by[("slot total per attempt p50", DEFERRABLE)],
        by[("slot segment 2 (resume -> finish) p50", DURABLE)],
        by[("run end -> task success p95", DURABLE)],
        by[("run end -> task success p50", DEFERRABLE)],
    )


def test_table_has_a_row_per_measure_and_both_ratios() -> None:
    """The Markdown table: four measures, p50 / p95 per implementation, then the ratios."""
    rows = [line for line in table(_report()).splitlines() if line.startswith("| slot total")]
    assert [
        "| slot total per attempt | 3.00 / 3.00 | 6.00 / 6.00 | 60.00 / 60.00 | 20x / 20x | 2x / 2x |"
    ] == rows


def test_a_report_with_one_segment_per_durable_and_two_per_deferrable_try_has_no_problems() -> None:
    """The expected shape has no problems; a deferrable try seen in one segment, a missing task and a
    second run at the emulator are each named."""
    assert [] == problems(_report())
    report = _report()
    ours = dataclasses.replace(report.implementations[0], attempts=(
        dataclasses.replace(report.implementations[0].attempts[0], segments=(3.0,), emulator_runs=2),
    ))  # fmt: skip
    broken = dataclasses.replace(report, tasks=2, implementations=(ours, *report.implementations[1:]))
    assert [
        "ours task 0 has 2 runs at the emulator, not 1",
        "ours task 0 held its slot in 1 segments, not 2",
        *[f"{name}: 1 tasks, not 2" for name in (OURS, DEFERRABLE, DURABLE)],
    ] == sorted(problems(broken))


def test_report_json_reads_back_into_the_same_typed_values() -> None:
    """What ``--json`` writes loads into an equal SlotsReport, and writes back the same."""
    report = _report()
    text = json.dumps(report.to_json(), indent=1)
    assert report == SlotsReport.from_json(json.loads(text))
    assert text == json.dumps(SlotsReport.from_json(json.loads(text)).to_json(), indent=1)


def test_bench_slots_is_a_subcommand_with_the_issue_options(capsys: pytest.CaptureFixture[str]) -> None:
    """``resumable-triggers bench-slots --help`` lists the size options, the outputs and the modes."""
    import resumable_triggers._bench._slots as slots
    from resumable_triggers._cli import main

    with pytest.raises(SystemExit) as exited:
        main(["bench-slots", "--help"])
    assert 0 == exited.value.code
    shown = capsys.readouterr().out
    assert ["add_arguments", "run"] == sorted(slots.__all__)
    for option in ("--tasks", "--run-seconds", "--poll-seconds", "--json", "--plot", "--together", "--order"):
        assert option in shown

"""Ratios between the implementations, and the Markdown table ``bench-slots`` prints."""

from __future__ import annotations

from collections.abc import Callable

from resumable_triggers._bench._slots._results import (
    DEFERRABLE,
    DURABLE,
    IMPLEMENTATIONS,
    OURS,
    ImplementationResult,
    Percentiles,
    Ratio,
    SlotsReport,
)

# measure -> how to read it from a result; the table's rows, in order.
MEASURES: dict[str, Callable[[ImplementationResult], Percentiles]] = {
    "slot segment 1 (start -> deferred)": lambda r: r.slot.segment_1,
    "slot segment 2 (resume -> finish)": lambda r: r.slot.segment_2,
    "slot total per attempt": lambda r: r.slot.total,
    "run end -> task success": lambda r: r.latency,
}


def ratios(results: dict[str, ImplementationResult]) -> tuple[Ratio, ...]:
    """durable / ours and provider-deferrable / ours, of each measure's p50 and p95."""
    out = []
    for numerator in (DURABLE, DEFERRABLE):
        for measure, read in MEASURES.items():
            for q in ("p50", "p95"):
                top = getattr(read(results[numerator]), q)
                bottom = getattr(read(results[OURS]), q)
                value = round(top / bottom, 2) if top is not None and bottom else None
                out.append(
                    Ratio(measure=f"{measure} {q}", numerator=numerator, denominator=OURS, value=value)
                )
    return tuple(out)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(report: SlotsReport, measure: str, numerator: str) -> str:
    [ratio] = [r for r in report.ratios if r.measure == measure and r.numerator == numerator]
    return "-" if ratio.value is None else f"{ratio.value:g}x"


def table(report: SlotsReport) -> str:
    """Seconds per measure, p50 / p95 per implementation, then the two ratios (of p50 / of p95)."""
    results = report.by_implementation()
    header = ["measure (s, p50 / p95)", *IMPLEMENTATIONS, "durable / ours", "deferrable / ours"]
    lines = [
        f"{report.tasks} tasks per implementation, runs of {report.run_seconds:g} s polled every "
        f"{report.poll_seconds} s, processes sampled every {report.sample_seconds:g} s "
        f"({'all at once' if report.together else 'in turns'}, {report.database}; {report.bench.date})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for measure, read in MEASURES.items():
        cells = [measure]
        cells += [f"{_fmt(read(results[i]).p50)} / {_fmt(read(results[i]).p95)}" for i in IMPLEMENTATIONS]
        for numerator in (DURABLE, DEFERRABLE):
            p50, p95 = (_ratio(report, f"{measure} {q}", numerator) for q in ("p50", "p95"))
            cells.append(f"{p50} / {p95}")
        lines.append("| " + " | ".join(cells) + " |")
    segs = ", ".join(f"{i}: {dict(results[i].slot.segments_per_attempt)}" for i in IMPLEMENTATIONS)
    lines += ["", f"segments per attempt (segment count: attempts): {segs}"]
    return "\n".join(lines)


def problems(report: SlotsReport) -> list[str]:
    """What makes the numbers untrustworthy: a task that did not succeed, a task that did not submit
    exactly one run, a deferrable try without two segments or a durable one without exactly one, an
    audit-log segment outside its process segment."""
    out = []
    for result in report.implementations:
        expected = 1 if result.implementation == DURABLE else 2
        for a in result.attempts:
            where = f"{result.implementation} task {a.map_index}"
            if a.state != "success":
                out.append(f"{where} ended {a.state}")
            if a.emulator_runs != 1:
                out.append(f"{where} has {a.emulator_runs} runs at the emulator, not 1")
            if len(a.segments) != expected:
                out.append(f"{where} held its slot in {len(a.segments)} segments, not {expected}")
            if not a.audit_inside:
                out.append(f"{where}: the audit log's segments {a.audit_segments} do not fit its processes'")
        if len(result.attempts) != report.tasks:
            out.append(f"{result.implementation}: {len(result.attempts)} tasks, not {report.tasks}")
    return out

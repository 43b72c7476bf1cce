"""The ``bench-capacity`` report as Markdown: one row per size and implementation, then the
capacities, measured beside computed, and their ratio."""

from __future__ import annotations

from resumable_triggers._bench._capacity_results import CapacityCurve, CapacityPoint, CapacityReport

_HEADER = (
    "| runs | trigger | 429s | most 429s in an interval | req/s mean | req/s busiest 1 s "
    "| req per run-interval | triggers failed | detection p99 | longest poll gap | polled in time |"
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _row(p: CapacityPoint) -> str:
    within = {True: "yes", False: "**no**", None: "-"}[p.polled_within_interval]
    detected = (
        "" if p.probes_detected == p.probes else f" ({p.probes - p.probes_detected} of {p.probes} unseen)"
    )
    cells = [
        f"{p.runs:,}",
        p.implementation,
        f"{p.responses_429:,}",
        f"{max(p.responses_429_per_interval, default=0):,}",
        f"{p.requests_per_second_mean:.1f}",
        f"{p.requests_per_second_max_1s:,}",
        f"{p.requests_per_run_interval:.3f}",
        f"{p.triggers_failed:,}",
        _seconds(p.detection_latency_p99_seconds) + detected,
        _seconds(p.poll_gap_max_seconds),
        within,
    ]
    return "| " + " | ".join(cells) + " |"


def _capacity(c: CapacityCurve, largest: int) -> str:
    if c.capacity is None:
        measured = f"below {c.first_failing_runs:,} (the smallest size failed)"
    elif c.first_failing_runs is None:
        measured = f"at least {c.capacity:,} (no size failed; the largest measured was {largest:,})"
    else:
        measured = f"{c.capacity:,} (next size, {c.first_failing_runs:,}, failed)"
    noise = "; a larger size passed again after the failure (noise?)" if c.passes_above_failure else ""
    return (
        f"- {c.implementation}: measured capacity {measured}{noise}; computed "
        f"{c.expected_capacity:,} (R * S / {c.model_requests_per_run_interval:g} requests per run-interval)"
    )


def table(report: CapacityReport) -> str:
    limit = report.poll_seconds + report.slack_seconds
    lines = [
        f"Workspace limit {report.limit_requests_per_second:g} req/s (burst {report.limit_burst}), "
        f"{report.poll_seconds:g} s interval; polled in time: every probe's end seen and every "
        f"per-run poll gap within {limit:g} s.",
        "",
        _HEADER,
        "|" + "---|" * _HEADER.count(" |"),
    ]
    rows = sorted(
        (p for c in report.curves() for p in c.points), key=lambda p: (p.runs, p.implementation != "ours")
    )
    lines += [_row(p) for p in rows]
    lines.append("")
    for c in report.curves():
        lines.append(_capacity(c, max((p.runs for p in c.points), default=0)))
    if report.capacity_ratio is not None:
        bound = " at least (ours passed every size)" if report.ours.first_failing_runs is None else ""
        lines.append(f"- ours / provider, measured capacity in this run:{bound} {report.capacity_ratio:g}x")
    if any(p.request_log_truncated for c in report.curves() for p in c.points):
        lines.append("- some request logs were truncated: rates and 429s per window undercount there")
    return "\n".join(lines)

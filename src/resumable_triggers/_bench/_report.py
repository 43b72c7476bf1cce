"""The issue's targets, checked against the measured phases, and the report as a Markdown table."""

from __future__ import annotations

from collections.abc import Callable

from resumable_triggers._bench._results import BenchReport, Comparison, MainResult, StormResult, Target

KIB = 1024


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 1)


def comparison(ours: MainResult, provider: MainResult) -> Comparison:
    """How many times more the provider's trigger costs than ours, on the same runs."""
    return Comparison(
        runs=provider.runs,
        cpu_seconds=_ratio(provider.cpu_seconds, ours.cpu_seconds),
        steady_cpu=_ratio(provider.steady_cpu_core_fraction, ours.steady_cpu_core_fraction),
        rss_bytes_per_run=_ratio(provider.rss_bytes_per_run, ours.rss_bytes_per_run),
        connections_peak=_ratio(provider.connections_peak, ours.connections_peak),
        requests_per_run_interval=_ratio(provider.requests_per_run_interval, ours.requests_per_run_interval),
    )


def targets(ours: MainResult, ratios: Comparison | None, storm: StormResult | None) -> tuple[Target, ...]:
    """Each target with what was measured; ``applies`` is False when the run's size or interval
    differs from the one the target is stated for (the check is still shown)."""
    out: list[Target] = []
    poll = ours.poll_seconds
    at_scale = ours.runs >= 10_000 and poll == 30
    checks: list[tuple[str, float | None, Callable[[float], bool]]] = [
        ("CPU <= 10 % of one core", ours.cpu_core_fraction, lambda v: v <= 0.10),
        ("RSS <= 8 KiB per watched run", ours.rss_bytes_per_run, lambda v: v <= 8 * KIB),
        ("<= 32 TCP connections", ours.connections_peak, lambda v: v <= 32),
        ("event-loop lag <= 0.2 s", ours.loop_lag_max_seconds, lambda v: v <= 0.2),
        (
            f"p99 detection latency <= interval + 2 s ({poll + 2:g} s)",
            ours.detection_latency_p99_seconds,
            lambda v: v <= poll + 2,
        ),
        ("<= 0.2 requests per watched run per interval", ours.requests_per_run_interval, lambda v: v <= 0.2),
        ("every run's event, with the right outcome", ours.errors, lambda v: v == 0),
    ]
    for text, value, ok in checks:
        met = None if value is None else ok(value)
        out.append(Target(target=f"{text} ({ours.runs} runs)", measured=value, met=met, applies=at_scale))
    if ratios is not None:
        applies = ratios.runs >= 1000
        for value, text, needed in (
            (ratios.cpu_seconds, "CPU vs provider", 5),
            (ratios.steady_cpu, "CPU while only watching (no run starting or ending) vs provider", 5),
            (ratios.rss_bytes_per_run, "memory vs provider", 5),
            (ratios.connections_peak, "connections vs provider", 10),
        ):
            out.append(
                Target(
                    target=f"{text} >= {needed}x less ({ratios.runs} runs)",
                    measured=value,
                    met=None if value is None else value >= needed,
                    applies=applies,
                )
            )
    if storm is not None:
        applies = storm.runs >= 10_000
        # Ours always has a budget; the provider's storm is never checked against these targets.
        below = (
            storm.budget_requests_per_second is not None
            and storm.budget_requests_per_second < storm.emulator_limit_requests_per_second
        )
        first_poll = storm.first_poll_max_seconds
        out += [
            Target(
                target=f"storm: never above the budget, +1 request of arrival jitter ({storm.runs} triggers)",
                measured=storm.max_excess_requests,
                met=storm.within_budget,
                applies=applies,
            ),
            Target(
                target="storm: zero 429s (budget below the emulator's limit)",
                measured=storm.responses_429,
                met=storm.responses_429 == 0,
                applies=applies and below,
            ),
            Target(
                target=f"storm: every run polled within interval + 2 s ({storm.poll_seconds + 2:g} s)",
                measured=first_poll,
                met=storm.runs_polled == storm.runs
                and first_poll is not None
                and first_poll <= storm.poll_seconds + 2,
                applies=applies,
            ),
        ]
    return tuple(out)


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"
    return f"{value:,}{unit}"


def _limit(storm: StormResult) -> str:
    return f"{_fmt(storm.budget_requests_per_second)} ({_fmt(storm.emulator_limit_requests_per_second)})"


def _pair(first: object, second: object, unit: str = "") -> str:
    return f"{_fmt(first)} / {_fmt(second, unit)}"


def table(report: BenchReport) -> str:
    """The main numbers side by side, as a Markdown table."""
    columns = [report.ours, report.ours_at_compare_runs, report.provider]
    phases = [m for m in columns if m is not None]
    rows: list[tuple[str, Callable[[MainResult], str]]] = [
        ("watched runs", lambda m: _fmt(m.runs)),
        (
            "CPU seconds (share of one core)",
            lambda m: f"{_fmt(m.cpu_seconds)} ({m.cpu_core_fraction:.1%})",
        ),
        ("CPU while only watching, ms per run-interval", lambda m: _fmt(m.steady_cpu_ms_per_run_interval)),
        ("RSS per watched run", lambda m: _fmt(m.rss_bytes_per_run / KIB, " KiB")),
        ("peak TCP connections", lambda m: _fmt(m.connections_peak)),
        ("requests per run per interval", lambda m: _fmt(m.requests_per_run_interval)),
        ("max event-loop lag", lambda m: _fmt(m.loop_lag_max_seconds, " s")),
        (
            "detection latency p50 / p99",
            lambda m: _pair(m.detection_latency_p50_seconds, m.detection_latency_p99_seconds, " s"),
        ),
        ("errors", lambda m: _fmt(m.errors)),
    ]
    header = "| | " + " | ".join(f"{m.implementation} ({m.runs:,})" for m in phases) + " |"
    lines = [header, "|---" * (len(phases) + 1) + "|"]
    lines += ["| " + label + " | " + " | ".join(cell(m) for m in phases) + " |" for label, cell in rows]
    if report.restart_storm is not None:
        storms = report.restart_storm.by_implementation()
        lines += [
            "",
            "| restart storm | " + " | ".join(f"{k} ({s.runs:,})" for k, s in storms.items()) + " |",
        ]
        lines.append("|---" * (len(storms) + 1) + "|")
        storm_rows: list[tuple[str, Callable[[StormResult], str]]] = [
            ("budget (emulator limit), req/s", _limit),
            ("max requests in 1 s", lambda s: _fmt(s.max_requests_in_1s)),
            ("worst window / budget", lambda s: _fmt(s.max_window_to_budget_ratio)),
            ("most requests above the budget in any window", lambda s: _fmt(s.max_excess_requests)),
            ("429s received", lambda s: _fmt(s.responses_429)),
            ("triggers that failed (gave up)", lambda s: _fmt(s.errors)),
            ("runs polled", lambda s: _fmt(s.runs_polled)),
            (
                "first poll p50 / max",
                lambda s: f"{_fmt(s.first_poll_p50_seconds)} / {_fmt(s.first_poll_max_seconds, ' s')}",
            ),
        ]
        lines += [
            "| " + label + " | " + " | ".join(cell(s) for s in storms.values()) + " |"
            for label, cell in storm_rows
        ]
    return "\n".join(lines)

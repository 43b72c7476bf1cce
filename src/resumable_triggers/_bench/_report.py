"""The issue's targets, checked against a report, and the report as a plain-text table."""

from __future__ import annotations

from typing import Any

KIB = 1024


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 1)


def comparison(ours: dict[str, Any], provider: dict[str, Any]) -> dict[str, Any]:
    """How many times more the provider's trigger costs than ours, on the same runs."""
    return {
        "runs": provider["runs"],
        "cpu_seconds": _ratio(provider["cpu_seconds"], ours["cpu_seconds"]),
        "steady_cpu": _ratio(provider["steady_cpu_core_fraction"], ours["steady_cpu_core_fraction"]),
        "rss_bytes_per_run": _ratio(provider["rss_bytes_per_run"], ours["rss_bytes_per_run"]),
        "connections_peak": _ratio(provider["connections_peak"], ours["connections_peak"]),
        "requests_per_run_interval": _ratio(
            provider["requests_per_run_interval"], ours["requests_per_run_interval"]
        ),
    }


def _target(text: str, measured: Any, met: bool | None, applies: bool) -> dict[str, Any]:
    return {"target": text, "measured": measured, "met": met, "applies": applies}


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with what was measured; ``applies`` is False when the run's size or interval
    differs from the one the target is stated for (the check is still shown)."""
    out: list[dict[str, Any]] = []
    ours = report["ours"]
    poll = ours["poll_seconds"]
    at_scale = ours["runs"] >= 10_000 and poll == 30
    checks = [
        ("CPU <= 10 % of one core", ours["cpu_core_fraction"], lambda v: v <= 0.10),
        ("RSS <= 8 KiB per watched run", ours["rss_bytes_per_run"], lambda v: v <= 8 * KIB),
        ("<= 32 TCP connections", ours["connections_peak"], lambda v: v <= 32),
        ("event-loop lag <= 0.2 s", ours["loop_lag_max_seconds"], lambda v: v <= 0.2),
        (
            f"p99 detection latency <= interval + 2 s ({poll + 2:g} s)",
            ours["detection_latency_p99_seconds"],
            lambda v: v <= poll + 2,
        ),
        (
            "<= 0.2 requests per watched run per interval",
            ours["requests_per_run_interval"],
            lambda v: v <= 0.2,
        ),
        ("every run's event, with the right outcome", ours["errors"], lambda v: v == 0),
    ]
    for text, value, ok in checks:
        out.append(
            _target(f"{text} ({ours['runs']} runs)", value, None if value is None else ok(value), at_scale)
        )
    if "comparison" in report:
        ratios = report["comparison"]
        applies = ratios["runs"] >= 1000
        for key, text, needed in (
            ("cpu_seconds", "CPU vs provider", 5),
            ("steady_cpu", "CPU while only watching (no run starting or ending) vs provider", 5),
            ("rss_bytes_per_run", "memory vs provider", 5),
            ("connections_peak", "connections vs provider", 10),
        ):
            value = ratios[key]
            met = None if value is None else value >= needed
            out.append(_target(f"{text} >= {needed}x less ({ratios['runs']} runs)", value, met, applies))
    storm = report.get("restart_storm", {}).get("ours")
    if storm:
        applies = storm["runs"] >= 10_000
        below = storm["budget_requests_per_second"] < storm["emulator_limit_requests_per_second"]
        out += [
            _target(
                f"storm: never above the budget, +1 request of arrival jitter ({storm['runs']} triggers)",
                storm["max_excess_requests"],
                storm["within_budget"],
                applies,
            ),
            _target(
                "storm: zero 429s (budget below the emulator's limit)",
                storm["responses_429"],
                storm["responses_429"] == 0,
                applies and below,
            ),
            _target(
                f"storm: every run polled within interval + 2 s ({storm['poll_seconds'] + 2:g} s)",
                storm["first_poll_max_seconds"],
                storm["runs_polled"] == storm["runs"]
                and storm["first_poll_max_seconds"] is not None
                and storm["first_poll_max_seconds"] <= storm["poll_seconds"] + 2,
                applies,
            ),
        ]
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"
    return f"{value:,}{unit}"


def _limit(storm: dict[str, Any]) -> str:
    budget = _fmt(storm["budget_requests_per_second"])
    return f"{budget} ({_fmt(storm['emulator_limit_requests_per_second'])})"


def _pair(first: Any, second: Any, unit: str = "") -> str:
    return f"{_fmt(first)} / {_fmt(second, unit)}"


def table(report: dict[str, Any]) -> str:
    """The main numbers side by side, as a Markdown table."""
    columns = [("ours", report["ours"])]
    if "ours_at_compare_runs" in report:
        columns.append(("ours", report["ours_at_compare_runs"]))
    if "provider" in report:
        columns.append(("provider", report["provider"]))
    rows = [
        ("watched runs", lambda m: _fmt(m["runs"])),
        (
            "CPU seconds (share of one core)",
            lambda m: f"{_fmt(m['cpu_seconds'])} ({m['cpu_core_fraction']:.1%})",
        ),
        ("CPU while only watching, ms per run-interval", lambda m: _fmt(m["steady_cpu_ms_per_run_interval"])),
        ("RSS per watched run", lambda m: _fmt(m["rss_bytes_per_run"] / KIB, " KiB")),
        ("peak TCP connections", lambda m: _fmt(m["connections_peak"])),
        ("requests per run per interval", lambda m: _fmt(m["requests_per_run_interval"])),
        ("max event-loop lag", lambda m: _fmt(m["loop_lag_max_seconds"], " s")),
        (
            "detection latency p50 / p99",
            lambda m: _pair(m["detection_latency_p50_seconds"], m["detection_latency_p99_seconds"], " s"),
        ),
        ("errors", lambda m: _fmt(m["errors"])),
    ]
    header = "| | " + " | ".join(f"{name} ({m['runs']:,})" for name, m in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + label + " | " + " | ".join(cell(m) for _, m in columns) + " |" for label, cell in rows]
    storms = report.get("restart_storm", {})
    if storms:
        lines += [
            "",
            "| restart storm | " + " | ".join(f"{k} ({s['runs']:,})" for k, s in storms.items()) + " |",
        ]
        lines.append("|---" * (len(storms) + 1) + "|")
        storm_rows = [
            ("budget (emulator limit), req/s", _limit),
            ("max requests in 1 s", lambda s: _fmt(s["max_requests_in_1s"])),
            ("worst window / budget", lambda s: _fmt(s["max_window_to_budget_ratio"])),
            ("most requests above the budget in any window", lambda s: _fmt(s["max_excess_requests"])),
            ("429s received", lambda s: _fmt(s["responses_429"])),
            ("triggers that failed (gave up)", lambda s: _fmt(s["errors"])),
            ("runs polled", lambda s: _fmt(s["runs_polled"])),
            (
                "first poll p50 / max",
                lambda s: f"{_fmt(s['first_poll_p50_seconds'])} / {_fmt(s['first_poll_max_seconds'], ' s')}",
            ),
        ]
        lines += [
            "| " + label + " | " + " | ".join(cell(s) for s in storms.values()) + " |"
            for label, cell in storm_rows
        ]
    return "\n".join(lines)

"""The report as one PNG: what a watched run costs with each trigger, and how the storm went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resumable_triggers._bench._results import BenchReport, MainResult

OURS, PROVIDER, BUDGET, LIMIT, LAG, RSS = "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#ff7f0e", "#9467bd"


def _tidy(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)


def _run_ends(ours: MainResult) -> str:
    """When the big run's first and last runs end, in intervals after the start, as its phase ran."""
    if ours.lead_seconds is None or ours.spread_seconds is None:
        return ""  # a report written before phases recorded their schedule
    first = ours.lead_seconds / ours.poll_seconds
    last = (ours.lead_seconds + ours.spread_seconds) / ours.poll_seconds
    return f", {first:g} to {last:.3g} intervals after the triggers start"


def plot(report: BenchReport, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, provider = report.ours, report.provider
    if ours is None:
        raise ValueError("bench plot: a --memory-only report has no main phase to draw")
    # The comparison uses ours at the provider's size; the big run gets its own panels.
    reference = report.reference
    storms = {} if report.restart_storm is None else report.restart_storm.by_implementation()
    bench = report.bench

    fig = plt.figure(figsize=(15, 12.5), layout="constrained")
    fig.suptitle(
        "DatabricksRunTrigger (ours) vs DatabricksExecutionTrigger (Databricks provider)\n"
        f"{bench.date} · {bench.machine.summary}",
        fontsize=13,
        weight="bold",
    )
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[1, 1.1, 1.1])  # type: ignore[misc]

    # Row 1: one bar pair per cost, on the same runs.
    size = f"{reference.runs:,} runs, {reference.poll_seconds:g} s interval"
    top.suptitle(
        f"What watching costs — {size}"
        + ("" if provider else " (run with --compare provider for the contrast)"),
        fontsize=12,
    )
    # A metric that could not be measured (None) fails here, as it always has: the plot needs them all.
    bars: list[tuple[str, Callable[[MainResult], Any], str]] = [
        ("CPU, % of one core", lambda m: 100 * m.cpu_core_fraction, "{:.2f} %"),  # type: ignore[operator]
        ("memory per watched run", lambda m: m.rss_bytes_per_run / 1024, "{:.1f} KiB"),
        ("peak TCP connections", lambda m: m.connections_peak, "{:,.0f}"),
        ("requests per run per interval", lambda m: m.requests_per_run_interval, "{:.3f}"),
    ]
    for ax, (label, value, fmt) in zip(top.subplots(1, 4), bars, strict=True):
        names, values, colors = ["ours"], [value(reference)], [OURS]
        if provider is not None:
            names.append("provider")
            values.append(value(provider))
            colors.append(PROVIDER)
        ax.bar(names, values, color=colors, width=0.6)
        for x, v in enumerate(values):
            ax.annotate(fmt.format(v), (x, v), ha="center", va="bottom", fontsize=10)
        times = f"\n{values[1] / values[0]:,.1f}x less" if provider is not None and values[0] else ""
        ax.set_title(label + times, fontsize=11)
        ax.set_ylim(0, max(values) * 1.25 or 1)
        _tidy(ax)

    # Row 2: requests sent while the runs finish, and how soon each finish was noticed.
    middle.suptitle(
        f"While the runs finish (the {ours.runs:,} runs end at staggered times{_run_ends(ours)})",
        fontsize=12,
    )
    left, right = middle.subplots(1, 2)
    curves = [(f"ours ({ours.runs:,} runs)", ours, OURS, "-")]
    if report.ours_at_compare_runs is not None:
        curves.append((f"ours ({reference.runs:,} runs)", reference, OURS, "--"))
    if provider is not None:
        curves.append((f"provider ({provider.runs:,} runs)", provider, PROVIDER, "-"))
    for name, m, color, style in curves:
        left.plot(m.series.t, m.series.requests_per_second, color=color, ls=style, lw=1, label=name)
    left.set(title="requests per second to the workspace", xlabel="seconds", ylabel="req/s")
    left.legend(frameon=False)
    _tidy(left)
    for name, m, color, style in curves:
        xs = m.latencies_seconds
        if xs:
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            right.plot(
                xs, ys, color=color, ls=style, label=f"{name}: p99 {m.detection_latency_p99_seconds:.1f} s"
            )
    limit = ours.poll_seconds + 2
    right.axvline(limit, color=LIMIT, ls=":", label=f"target: interval + 2 s = {limit:g} s")
    right.set(
        title="detection latency: run terminal at the workspace → event fired",
        xlabel="seconds",
        ylabel="share of runs",
        ylim=(0, 1.02),
    )
    right.legend(frameon=False, loc="lower right")
    _tidy(right)

    # Row 3: the restart storm, and the big run's own footprint over time.
    left, right = bottom.subplots(1, 2)
    storm = storms.get("ours")
    if storm is not None:
        bottom.suptitle(
            f"Restart storm ({storm.runs:,} triggers at once), and the {ours.runs:,}-run triggerer over time",
            fontsize=12,
        )
        seconds = range(len(storm.requests_per_second))
        left.bar(seconds, storm.requests_per_second, color=OURS, width=1.0, label=f"ours ({storm.runs:,})")
        left.axhline(storm.budget_requests_per_second, color=BUDGET, ls="--", label="our request budget")
        left.axhline(
            storm.emulator_limit_requests_per_second, color=LIMIT, ls=":", label="workspace rate limit"
        )
        other = storms.get("provider")
        if other is not None:
            left.plot(
                range(len(other.requests_per_second)),
                other.requests_per_second,
                color=PROVIDER,
                lw=1,
                label=(
                    f"provider ({other.runs:,}): {other.responses_429:,} x HTTP 429, "
                    f"{other.errors:,} triggers failed"
                ),
            )
            # The provider's bursts are an order of magnitude above everything else.
            left.set_yscale("log")
            left.set_ylim(bottom=1)
            left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        left.set(
            title=(
                f"ours: {storm.responses_429} x HTTP 429, every run polled within "
                f"{storm.first_poll_max_seconds:.1f} s"
            ),
            xlabel="seconds after the triggers start",
            ylabel="req/s",
        )
        left.legend(frameon=False, fontsize=9, loc="upper right")
        _tidy(left)
    series = ours.series
    right.plot(
        series.t,
        [100 * c for c in series.cpu_core_fraction],
        color=OURS,
        lw=1,
        label="CPU, % of a core",
    )
    lag = ours.loop_lag_by_second
    right.plot(
        [s for s, _ in lag], [1000 * v for _, v in lag], color=LAG, lw=0.8, label="longest loop stall, ms"
    )
    right.set(
        title=(
            f"ours, {ours.runs:,} runs: {ours.cpu_core_fraction:.1%} of a core, "
            f"{ours.rss_bytes_per_run / 1024:.1f} KiB/run, ≤ {ours.connections_peak} sockets"
        ),
        xlabel="seconds",
        ylabel="% of one core / ms",
    )
    twin = right.twinx()
    twin.plot(series.t, [r / 2**20 for r in series.rss_bytes], color=RSS, label="RSS, MiB")
    twin.set_ylabel("RSS, MiB")
    twin.set_ylim(0, max(series.rss_bytes, default=1) / 2**20 * 1.2)
    handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    right.legend(
        handles, [str(h.get_label()) for h in handles], frameon=False, fontsize=9, loc="center right"
    )
    right.spines[["top"]].set_visible(False)

    fig.savefig(path, dpi=100)
    plt.close(fig)

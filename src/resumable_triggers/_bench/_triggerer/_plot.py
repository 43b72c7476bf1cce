"""The ``bench-triggerer`` report as one PNG (the style of ``_bench._plot``): the side-by-side costs
at the compared size, then every phase over time (tasks running against the capacity, RSS, CPU) and
its event latencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from resumable_triggers._bench._plot import LIMIT, OURS, PROVIDER, _tidy
from resumable_triggers._bench._triggerer._report import comparable
from resumable_triggers._bench._triggerer._results import TriggererPhase, TriggererReport


def _label(p: TriggererPhase) -> str:
    return f"{p.implementation} {p.triggers:,} (cap {p.capacity:,})"


def plot(report: TriggererReport, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 12), layout="constrained")
    fig.suptitle(
        "A real airflow triggerer: DatabricksRunTrigger (ours) vs DatabricksExecutionTrigger (provider)\n"
        f"{report.bench.date} · {report.bench.machine.summary}",
        fontsize=13,
        weight="bold",
    )
    top, middle, bottom = fig.subfigures(3, 1)  # type: ignore[misc]

    ratio = report.comparison
    size = ratio.triggers if ratio is not None else None
    pair = [
        p
        for p in (
            comparable(report.phases, "ours", size) if size else None,
            comparable(report.phases, "provider", size) if size else None,
        )
        if p is not None
    ]
    top.suptitle(
        f"The triggerer's process tree, {size:,} deferred tasks each"
        if size
        else "(run with --compare provider for the side-by-side costs)",
        fontsize=12,
    )
    bars: list[tuple[str, Callable[[TriggererPhase], Any], str]] = [
        ("CPU seconds, whole tree", lambda p: p.cpu_seconds, "{:,.1f}"),
        ("RSS per deferred task, KiB", lambda p: (p.rss_bytes_per_task or 0) / 1024, "{:,.1f}"),
        ("peak TCP to the workspace", lambda p: p.workspace_connections_peak, "{:,.0f}"),
        ("stalls Airflow logged", lambda p: p.stalls, "{:,.0f}"),
    ]
    for ax, (title, value, fmt) in zip(top.subplots(1, 4), bars, strict=True):
        if not pair:
            ax.axis("off")
            continue
        values = [value(p) for p in pair]
        ax.bar([p.implementation for p in pair], values, color=[OURS, PROVIDER][: len(pair)], width=0.6)
        for x, v in enumerate(values):
            ax.annotate(fmt.format(v), (x, v), ha="center", va="bottom", fontsize=10)
        ax.set_title(title, fontsize=11)
        ax.set_ylim(0, max(values, default=1) * 1.25 or 1)
        _tidy(ax)

    middle.suptitle("Tasks running (assigned to the triggerer) and event latency", fontsize=12)
    left, right = middle.subplots(1, 2)
    colors = {"ours": OURS, "provider": PROVIDER}
    for p in report.phases:
        style = "-" if p.limit_bound != "capacity" else ":"
        color = colors.get(p.implementation, LIMIT)
        left.plot(p.series.t, p.series.assigned, color=color, ls=style, lw=1, label=_label(p))
        if p.latencies_seconds:
            xs = p.latencies_seconds
            right.plot(
                xs, [(i + 1) / len(xs) for i in range(len(xs))], color=color, ls=style, label=_label(p)
            )
    left.set(title="assigned triggers (dotted: capacity bound)", xlabel="seconds after seeding")
    left.legend(frameon=False, fontsize=8)
    right.set(title="run ended → task scheduled", xlabel="seconds", ylabel="share of tasks", ylim=(0, 1.02))
    right.legend(frameon=False, fontsize=8, loc="lower right")
    _tidy(left)
    _tidy(right)

    bottom.suptitle("The triggerer's tree over time", fontsize=12)
    left, right = bottom.subplots(1, 2)
    for p in report.phases:
        style = "-" if p.limit_bound != "capacity" else ":"
        color = colors.get(p.implementation, LIMIT)
        left.plot(
            p.series.t, [r / 2**20 for r in p.series.rss_bytes], color=color, ls=style, lw=1, label=_label(p)
        )
        right.plot(
            p.series.t,
            [100 * c for c in p.series.cpu_core_fraction],
            color=color,
            ls=style,
            lw=0.8,
            label=_label(p),
        )
    left.set(title="RSS, MiB", xlabel="seconds after seeding")
    right.set(title="CPU, % of one core", xlabel="seconds after seeding")
    left.legend(frameon=False, fontsize=8)
    _tidy(left)
    _tidy(right)

    fig.savefig(path, dpi=100)
    plt.close(fig)

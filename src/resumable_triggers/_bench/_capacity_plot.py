"""The ``bench-capacity`` curve as one PNG: 429s against runs watched (log x), each capacity marked;
beside it, detection latency against runs, with the interval + slack it must stay within."""

from __future__ import annotations

from typing import Any

from resumable_triggers._bench._capacity_results import CapacityReport
from resumable_triggers._bench._plot import LIMIT, OURS, PROVIDER, _tidy

_COLORS = {"ours": OURS, "provider": PROVIDER}


def plot(report: CapacityReport, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), layout="constrained")
    bench = report.bench
    fig.suptitle(
        f"The workspace's rate limit as a capacity: {report.limit_requests_per_second:g} req/s, "
        f"{report.poll_seconds:g} s interval\n{bench.date} · {bench.machine.summary}",
        fontsize=12,
        weight="bold",
    )
    for c in report.curves():
        color = _COLORS[c.implementation]
        xs = [p.runs for p in c.points]
        # 429s on a symlog axis: zero is the point of the measurement and must stay visible.
        left.plot(xs, [p.responses_429 for p in c.points], "o-", color=color, label=f"{c.implementation}")
        if c.capacity is not None:
            at_least = "≥ " if c.first_failing_runs is None else ""
            left.axvline(
                c.capacity,
                color=color,
                ls="--",
                lw=1,
                label=f"{c.implementation}: capacity {at_least}{c.capacity:,}",
            )
        left.axvline(
            c.expected_capacity,
            color=color,
            ls=":",
            lw=1,
            label=f"{c.implementation}: computed {c.expected_capacity:,}",
        )
        right.plot(
            xs,
            [_latency(p.detection_latency_p99_seconds, p.window_seconds) for p in c.points],
            "o-",
            color=color,
            label=f"{c.implementation}: detection latency p99",
        )
        unseen = [p for p in c.points if p.probes_detected < p.probes]
        if unseen:
            right.scatter(
                [p.runs for p in unseen],
                [p.window_seconds for p in unseen],
                marker="x",
                s=80,
                color=color,
                label=f"{c.implementation}: a probe never seen (drawn at the window's length)",
            )
    left.set_xscale("log")
    left.set_yscale("symlog", linthresh=1)
    left.set(title="HTTP 429s in the window", xlabel="runs watched", ylabel="429 responses")
    left.legend(frameon=False, fontsize=9)
    _tidy(left)
    limit = report.poll_seconds + report.slack_seconds
    right.axhline(limit, color=LIMIT, ls=":", label=f"interval + slack = {limit:g} s")
    right.set_xscale("log")
    right.set(
        title="how stale a run gets: its end at the workspace → event (p99 of probes)",
        xlabel="runs watched",
        ylabel="seconds",
    )
    right.legend(frameon=False, fontsize=9)
    _tidy(right)
    sizes = sorted({p.runs for c in report.curves() for p in c.points})
    for ax in (left, right):
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latency(value: float | None, window: float) -> float:
    """No probe seen at all: drawn at the window's length, at least that stale."""
    return window if value is None else value


def _count(value: float, _: Any) -> str:
    return f"{value:,.0f}"

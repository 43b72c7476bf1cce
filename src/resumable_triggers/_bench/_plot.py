"""The report as one PNG: what a watched run costs with each trigger, and how the storm went."""

from __future__ import annotations

from typing import Any

OURS, PROVIDER, BUDGET, LIMIT = "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"


def plot(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = report["ours"]
    compared = report.get("ours_at_compare_runs", ours) if "provider" in report else None
    provider = report.get("provider")
    storms = report.get("restart_storm", {})

    fig = plt.figure(figsize=(15, 11), layout="constrained")
    grid = fig.add_gridspec(3, 4, height_ratios=[1, 1.15, 1.15])
    title = f"resumable-triggers bench — {report['bench']['date']}, {report['bench']['machine']['summary']}"
    fig.suptitle(title, fontsize=13, weight="bold")

    # Row 1: one bar pair per cost, ours vs the provider's trigger on the same runs.
    reference = compared or ours
    bars = [
        ("CPU (% of one core)", lambda m: 100 * m["cpu_core_fraction"], "{:.1f} %"),
        ("memory per watched run", lambda m: m["rss_bytes_per_run"] / 1024, "{:.1f} KiB"),
        ("peak TCP connections", lambda m: m["connections_peak"], "{:,.0f}"),
        ("requests per run per interval", lambda m: m["requests_per_run_interval"], "{:.3f}"),
    ]
    for column, (label, value, fmt) in enumerate(bars):
        ax = fig.add_subplot(grid[0, column])
        names, values, colors = ["ours"], [value(reference)], [OURS]
        if provider is not None:
            names.append("provider")
            values.append(value(provider))
            colors.append(PROVIDER)
        ax.bar(names, values, color=colors, width=0.6)
        for x, v in enumerate(values):
            ax.annotate(fmt.format(v), (x, v), ha="center", va="bottom", fontsize=10)
        if provider is not None and values[0]:
            ax.set_title(f"{label}\n{values[1] / values[0]:,.0f}x less", fontsize=11)
        else:
            ax.set_title(label, fontsize=11)
        ax.set_ylim(0, max(values) * 1.25 or 1)
        ax.spines[["top", "right"]].set_visible(False)
    fig.text(
        0.01,
        0.69,
        f"{reference['runs']:,} runs, {reference['poll_seconds']:g} s interval",
        fontsize=9,
        color="#555",
    )

    # Row 2 left: requests per second sent to the workspace while watching.
    ax = fig.add_subplot(grid[1, :2])
    for name, m, color in (("ours", reference, OURS), ("provider", provider, PROVIDER)):
        if m is not None:
            series = m["series"]
            ax.plot(
                series["t"], series["requests_per_second"], color=color, label=f"{name} ({m['runs']:,} runs)"
            )
    if compared is not None and "ours_at_compare_runs" in report:
        series = ours["series"]
        ax.plot(
            series["t"],
            series["requests_per_second"],
            color=OURS,
            ls="--",
            label=f"ours ({ours['runs']:,} runs)",
        )
    ax.set(title="requests per second to the workspace, while runs finish", xlabel="seconds", ylabel="req/s")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)

    # Row 2 right: detection latency, as a CDF against the target.
    ax = fig.add_subplot(grid[1, 2:])
    for name, m, color, style in (
        ("ours", ours, OURS, "--" if "ours_at_compare_runs" in report else "-"),
        ("ours", report.get("ours_at_compare_runs"), OURS, "-"),
        ("provider", provider, PROVIDER, "-"),
    ):
        if m is not None and m["latencies_seconds"]:
            xs = m["latencies_seconds"]
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            p99 = m["detection_latency_p99_seconds"]
            ax.plot(xs, ys, color=color, ls=style, label=f"{name} ({m['runs']:,} runs): p99 {p99:.1f} s")
    limit = ours["poll_seconds"] + 2
    ax.axvline(limit, color=LIMIT, ls=":", label=f"target: interval + 2 s = {limit:g} s")
    ax.set(
        title="detection latency: run terminal -> event fired",
        xlabel="seconds",
        ylabel="share of runs",
        ylim=(0, 1.02),
    )
    ax.legend(frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)

    # Row 3 left: the restart storm, requests per second against the budget and the workspace limit.
    ax = fig.add_subplot(grid[2, :2])
    storm = storms.get("ours")
    if storm is not None:
        xs = range(len(storm["requests_per_second"]))
        ax.bar(
            xs,
            storm["requests_per_second"],
            color=OURS,
            width=1.0,
            label=f"ours ({storm['runs']:,} triggers)",
        )
        ax.axhline(storm["budget_requests_per_second"], color=BUDGET, ls="--", label="configured budget")
        ax.axhline(storm["emulator_limit_requests_per_second"], color=LIMIT, ls=":", label="workspace limit")
        other = storms.get("provider")
        if other is not None:
            ax.plot(
                range(len(other["requests_per_second"])),
                other["requests_per_second"],
                color=PROVIDER,
                label=f"provider ({other['runs']:,} triggers): {other['responses_429']:,} x 429",
            )
            ax.set_yscale("symlog", linthresh=50)
        ax.set(
            title=(
                f"restart storm: {storm['runs']:,} triggers at once — {storm['responses_429']} x 429, "
                f"all polled within {storm['first_poll_max_seconds']:.1f} s"
            ),
            xlabel="seconds after start",
            ylabel="req/s",
        )
        ax.legend(frameon=False, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)

    # Row 3 right: the big run's own footprint over time.
    ax = fig.add_subplot(grid[2, 2:])
    series = ours["series"]
    ax.plot(
        series["t"], [100 * c for c in series["cpu_core_fraction"]], color=OURS, label="CPU, % of one core"
    )
    lag = ours["loop_lag_by_second"]
    ax.plot(
        [s for s, _ in lag],
        [1000 * v / 10 for _, v in lag],
        color="#ff7f0e",
        lw=0.8,
        label="loop lag, ms / 10",
    )
    ax.set(
        title=(
            f"ours, {ours['runs']:,} runs: {ours['cpu_core_fraction']:.1%} CPU, "
            f"{ours['rss_bytes_per_run'] / 1024:.1f} KiB/run, {ours['connections_peak']} connections"
        ),
        xlabel="seconds",
    )
    ax2 = ax.twinx()
    ax2.plot(series["t"], [r / 2**20 for r in series["rss_bytes"]], color="#9467bd", label="RSS, MiB")
    ax2.set_ylabel("RSS, MiB")
    ax2.set_ylim(0, max(series["rss_bytes"], default=1) / 2**20 * 1.2)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], frameon=False, fontsize=9, loc="upper right")
    ax.spines[["top"]].set_visible(False)

    fig.savefig(path, dpi=110)
    plt.close(fig)

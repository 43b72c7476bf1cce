"""The report as one PNG: slot seconds per attempt (stacked by segment) and the latency to success."""

from __future__ import annotations

from resumable_triggers._bench._plot import _tidy
from resumable_triggers._bench._slots._results import IMPLEMENTATIONS, SlotsReport

COLOURS = {"ours": "#1f77b4", "provider-deferrable": "#d62728", "provider-durable": "#7f7f7f"}


def plot(report: SlotsReport, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report.by_implementation()
    fig, (slots, latency) = plt.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    fig.suptitle(
        "Worker slot held per logical attempt: ours vs the Databricks provider\n"
        f"{report.tasks} tasks each, runs of {report.run_seconds:g} s, polled every {report.poll_seconds} s"
        f" · {report.bench.date} · {report.bench.machine.summary}",
        fontsize=12,
        weight="bold",
    )
    names = list(IMPLEMENTATIONS)
    for x, name in enumerate(names):
        stats = results[name].slot
        first = stats.segment_1.p50 or 0.0
        second = stats.segment_2.p50 or 0.0
        slots.bar(
            x, first, color=COLOURS[name], label="segment 1 (start -> deferred / end)" if x == 0 else None
        )
        slots.bar(x, second, bottom=first, color=COLOURS[name], alpha=0.45,
                  label="segment 2 (resume -> finish)" if x == 0 else None)  # fmt: skip
        for bottom, height in ((0.0, first), (first, second)):
            if height:
                slots.text(x, bottom + height / 2, f"{height:.2f}", ha="center", va="center", color="white")
        total = stats.total
        slots.errorbar(x, total.p50 or 0.0, yerr=[[0], [(total.p95 or 0.0) - (total.p50 or 0.0)]],
                       color="black", capsize=6)  # fmt: skip
        slots.annotate(f"total {total.p50 or 0:.2f} s", (x, total.p95 or 0.0), ha="center", va="bottom",
                       xytext=(0, 4), textcoords="offset points")  # fmt: skip
        values = [a.latency_seconds for a in results[name].attempts if a.latency_seconds is not None]
        latency.scatter([x] * len(values), values, color=COLOURS[name], alpha=0.6)
        if results[name].latency.p50 is not None:
            latency.hlines(results[name].latency.p50, x - 0.3, x + 0.3, color="black")
    slots.set_title("slot seconds per attempt: p50 stacked by segment, whisker to p95 of the total")
    slots.set_ylabel("seconds")
    slots.set_ylim(bottom=0)
    slots.margins(y=0.15)
    latency.set_title("run ended at the emulator -> task success (each task; bar: p50)")
    latency.set_ylabel("seconds")
    for ax in (slots, latency):
        ax.set_xticks(range(len(names)), names)
        _tidy(ax)
    slots.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=2, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""The campaign's timeline as one picture of a fixed size, however many tasks and faults it had.

::

    faults ........ one lane per kind and target ("sigkill triggerer", "storm_429 emulator", "died
                    scheduler"): a bar from the moment it struck to the moment it was over
    user actions .. one lane per action (clear, mark_failed, mark_success): a triangle each
    runs .......... every Databricks run of a task: a thin line from created to ended, coloured by how
                    it ended, stacked by start; a grey tick per runs/cancel the emulator applied
    active runs ... how many of those runs were active, over time
    violations .... a red dashed line across all four

A row per task instance (the first plot's layout) grew to 3,300 px for an hour's campaign and drew
the faults over everything; here the runs share one panel and the faults have lanes of their own.
``fault_lanes``, ``action_lanes``, ``run_rows`` and ``active_runs`` are pure functions of the history,
so what is drawn is tested without drawing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resumable_triggers.testing.chaos._checker import Violation
from resumable_triggers.testing.chaos._history import History
from resumable_triggers.testing.chaos._report import fault_label

SIZE_INCHES = (14.0, 11.0)
MIN_BAR_SECONDS = 2.0  # a SIGKILL is over at once; still draw it wide enough to see
COLOURS = {"SUCCESS": "tab:green", "FAILED": "tab:red", "CANCELED": "tab:gray", "TIMEDOUT": "tab:orange"}
ACTIVE = "tab:blue"


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run on the runs panel: seconds since the campaign started; ``end`` None: still active."""

    start: float
    end: float | None
    result_state: str | None


def fault_lanes(history: History) -> dict[str, list[tuple[float, float]]]:
    """Lane label -> (start, width) bars, in seconds since the start; faults that found no live
    target are left out (they struck nothing). Lanes sorted by target, then kind."""
    lanes: dict[str, list[tuple[float, float]]] = {}
    for fault in sorted(history.faults, key=lambda f: f.time):
        if fault.ok:
            width = max(fault.end_time - fault.time, MIN_BAR_SECONDS)
            lanes.setdefault(fault_label(fault), []).append((fault.time - history.started, width))
    return dict(sorted(lanes.items(), key=lambda kv: (kv[0].split(" ", 1)[-1], kv[0])))


def action_lanes(history: History) -> dict[str, list[float]]:
    """Action -> the moments Airflow accepted it, in seconds since the start."""
    lanes: dict[str, list[float]] = {}
    for action in sorted(history.actions, key=lambda a: a.time):
        if action.ok:
            lanes.setdefault(action.action, []).append(action.time - history.started)
    return dict(sorted(lanes.items()))


def run_rows(history: History) -> list[RunRow]:
    """The tasks' runs (not foreign ones), by start."""
    rows = [
        RunRow(
            start=run.start - history.started,
            end=None if run.end is None else run.end - history.started,
            result_state=run.result_state,
        )
        for run in history.runs
        if run.ti is not None
    ]
    return sorted(rows, key=lambda r: r.start)


def active_runs(rows: list[RunRow]) -> list[tuple[float, int]]:
    """(time, runs active from then on), one point per change: a step function."""
    changes: dict[float, int] = {}
    for row in rows:
        changes[row.start] = changes.get(row.start, 0) + 1
        if row.end is not None:
            changes[row.end] = changes.get(row.end, 0) - 1
    points: list[tuple[float, int]] = []
    active = 0
    for time in sorted(changes):
        active += changes[time]
        points.append((time, active))
    return points


def plot(history: History, violations: list[Violation], path: Path) -> str | None:
    """Write the timeline PNG; return None, or why no plot was written (matplotlib missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib to get one)"
    faults, actions, rows = fault_lanes(history), action_lanes(history), run_rows(history)
    span = history.ended - history.started
    lane_count = max(1, len(faults) + len(actions))
    fig, (lanes_ax, runs_ax, active_ax) = plt.subplots(
        3, 1, figsize=SIZE_INCHES, sharex=True, height_ratios=(max(2, lane_count * 0.22), 4, 1.2)
    )
    for i, bars in enumerate(faults.values()):
        lanes_ax.broken_barh(bars, (i - 0.4, 0.8), color="tab:purple", alpha=0.7)
    for j, times in enumerate(actions.values(), start=len(faults)):
        lanes_ax.plot(times, [j] * len(times), "v", color="black", markersize=5)
    lanes_ax.set_yticks(range(len(faults) + len(actions)), [*faults, *actions], fontsize=7)
    lanes_ax.set_ylim(lane_count - 0.5, -0.5)  # lane_count >= 1: a campaign with no fault still gets a panel
    lanes_ax.set_title("faults (purple: struck until over) and user actions (triangles)", fontsize=9)

    linewidth = max(0.4, min(3.0, 250 / max(1, len(rows))))
    for i, row in enumerate(rows):
        end = span if row.end is None else row.end
        colour = COLOURS.get(row.result_state or "", ACTIVE)
        runs_ax.plot([row.start, end], [i, i], color=colour, linewidth=linewidth, solid_capstyle="butt")
    cancels = [
        r.time - history.started
        for r in history.requests
        if r.endpoint == "runs/cancel" and r.run_id is not None
    ]
    runs_ax.plot(cancels, [-1.5] * len(cancels), "|", color="tab:gray", markersize=8)
    runs_ax.set_ylabel("runs, by start")
    runs_ax.set_title(
        f"{len(rows)} Databricks runs (green succeeded, red failed, grey cancelled, orange timed out, blue"
        " active); ticks below: runs/cancel applied",
        fontsize=9,
    )
    points = active_runs(rows)
    if points:
        active_ax.step([t for t, _ in points], [n for _, n in points], where="post", color=ACTIVE)
    active_ax.set_ylabel("active runs")
    active_ax.set_xlabel("seconds since the campaign started")
    for violation in violations:
        for ax in (lanes_ax, runs_ax, active_ax):
            ax.axvline(violation.time - history.started, color="red", linestyle="--")
    fig.suptitle(
        f"chaos seed {history.seed}: {len(violations)} violation(s)"
        + ("" if history.settled else " (did not settle: some task instances were still open)"),
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None

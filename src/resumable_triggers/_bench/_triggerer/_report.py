"""Pure decisions of ``bench-triggerer``: which phases run, which limit bound, ratios, the table.

Phases (``plan_phases``): ours at every ``--sizes``, and with ``--compare provider`` both at every
``--compare-sizes`` (ours and the provider back to back); a size above the capacity runs twice,
once at the capacity (to show it binding: how many of the asked tasks actually ran) and, unless
``--no-raise-capacity``, with the capacity raised to the size, so that the trigger's own cost at
that size is measured. The comparison uses the phases in which capacity did not bind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from resumable_triggers._bench._memory import least_squares
from resumable_triggers._bench._triggerer._results import (
    CAPACITY,
    CPU,
    NONE,
    PICKUP,
    TriggererComparison,
    TriggererPhase,
    TriggererReport,
)

# [triggerer] capacity when the configuration does not set it (Airflow 3.3's config.yml; a test
# reads the installed Airflow's default to keep this honest).
AIRFLOW_DEFAULT_CAPACITY = 1000
# Share of one core above which the triggerer's tree counts as CPU-bound (its triggers share one
# event loop, so one core is all they get).
CPU_BOUND_CORE_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class PhaseKey:
    implementation: str
    triggers: int
    capacity: int


def plan_phases(
    *,
    sizes: Sequence[int],
    compare_sizes: Sequence[int],
    compare: bool,
    capacity: int,
    raise_capacity: bool,
) -> list[PhaseKey]:
    """Every phase to run, in order, without repeats (see the module docstring)."""
    wanted: list[tuple[str, int]] = []
    if compare:
        for size in compare_sizes:
            wanted += [("ours", size), ("provider", size)]
    wanted += [("ours", size) for size in sizes]
    out: list[PhaseKey] = []
    for implementation, size in wanted:
        keys = [PhaseKey(implementation, size, capacity)]
        if size > capacity and raise_capacity:
            keys.append(PhaseKey(implementation, size, size))
        out += [k for k in keys if k not in out]
    return out


def binding_limit(*, asked: int, capacity: int, peak_assigned: int, cpu_core_fraction: float | None) -> str:
    """Which limit bound first: the capacity (it stopped the triggerer at ``capacity`` of the
    ``asked``), pick-up (capacity allowed all, yet they never all ran at once: Airflow assigns at most
    ``[triggerer] max_trigger_to_select_per_loop``, 50, per loop while runs already finish), CPU (all
    ran, on a saturated core), or none."""
    if peak_assigned < asked:
        return CAPACITY if peak_assigned >= capacity else PICKUP
    if cpu_core_fraction is not None and cpu_core_fraction >= CPU_BOUND_CORE_FRACTION:
        return CPU
    return NONE


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` (0-100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 2)


def comparable(phases: Sequence[TriggererPhase], implementation: str, triggers: int) -> TriggererPhase | None:
    """The phase of that implementation and size to compare: one in which capacity did not bind,
    else (``--no-raise-capacity``) the one at the highest capacity; None if none ran."""
    candidates = [p for p in phases if p.implementation == implementation and p.triggers == triggers]
    return max(candidates, key=lambda p: (p.limit_bound != CAPACITY, p.capacity), default=None)


def comparison(ours: TriggererPhase, provider: TriggererPhase) -> TriggererComparison:
    return TriggererComparison(
        triggers=ours.triggers,
        capacity_bound=CAPACITY in (ours.limit_bound, provider.limit_bound),
        cpu_seconds=_ratio(provider.cpu_seconds, ours.cpu_seconds),
        rss_bytes_per_task=_ratio(provider.rss_bytes_per_task, ours.rss_bytes_per_task),
        workspace_connections_peak=_ratio(
            provider.workspace_connections_peak, ours.workspace_connections_peak
        ),
        database_connections_peak=_ratio(provider.database_connections_peak, ours.database_connections_peak),
        stalls=_ratio(provider.stalls, ours.stalls),
        stall_max_seconds=_ratio(provider.stall_max_seconds, ours.stall_max_seconds),
        latency_p99_seconds=_ratio(provider.latency_p99_seconds, ours.latency_p99_seconds),
    )


def rss_slope(phases: Sequence[TriggererPhase], implementation: str = "ours") -> float | None:
    """Bytes per running task: the least-squares slope of peak RSS over the tasks assigned, across
    the implementation's phases (one-off costs land in the intercept); None below two sizes."""
    points = [(p.peak_assigned, p.rss_peak_bytes) for p in phases if p.implementation == implementation]
    if len({x for x, _ in points}) < 2:
        return None
    return round(least_squares([x for x, _ in points], [y for _, y in points]).slope, 1)


def _fmt(value: float | None, spec: str = "{:,.2f}") -> str:
    return "-" if value is None else spec.format(value)


ROWS: list[tuple[str, str, str]] = [  # label, TriggererPhase field, format
    ("tasks asked / peak running", "", ""),
    ("[triggerer] capacity", "capacity", "{:,.0f}"),
    ("limit that bound first", "limit_bound", "{}"),
    ("ramp to full, s", "ramp_seconds", "{:,.1f}"),
    ("CPU seconds (whole tree)", "cpu_seconds", "{:,.1f}"),
    ("CPU, share of one core", "cpu_core_fraction", "{:.1%}"),
    ("RSS idle, MiB", "rss_idle_bytes", "MiB"),
    ("RSS peak, MiB", "rss_peak_bytes", "MiB"),
    ("RSS per deferred task, KiB", "rss_bytes_per_task", "KiB"),
    ("TCP to the workspace, peak", "workspace_connections_peak", "{:,.0f}"),
    ("TCP to PostgreSQL, peak", "database_connections_peak", "{:,.0f}"),
    ("stalls logged (> 0.2 s)", "stalls", "{:,.0f}"),
    ("longest stall, s", "stall_max_seconds", "{:,.2f}"),
    ("triggers.blocked_main_thread", "metrics_blocked_main_thread", "{:,.0f}"),
    ("events / wrong / undelivered", "", ""),
    ("latency p50, s", "latency_p50_seconds", "{:,.1f}"),
    ("latency p99, s", "latency_p99_seconds", "{:,.1f}"),
]

RATIOS = {
    "cpu_seconds": "cpu_seconds",
    "rss_bytes_per_task": "rss_bytes_per_task",
    "workspace_connections_peak": "workspace_connections_peak",
    "database_connections_peak": "database_connections_peak",
    "stalls": "stalls",
    "stall_max_seconds": "stall_max_seconds",
    "latency_p99_seconds": "latency_p99_seconds",
}


def _cell(phase: TriggererPhase, label: str, name: str, spec: str) -> str:
    if label.startswith("tasks asked"):
        return f"{phase.triggers:,} / {phase.peak_assigned:,}"
    if label.startswith("events"):
        return f"{phase.events:,} / {phase.wrong_outcomes:,} / {phase.undelivered:,}"
    value = getattr(phase, name)
    if spec == "MiB":
        return _fmt(None if value is None else value / 2**20, "{:,.0f}")
    if spec == "KiB":
        return _fmt(None if value is None else value / 1024, "{:,.1f}")
    if isinstance(value, str):
        return value
    return _fmt(value, spec)


def table(report: TriggererReport) -> str:
    """One column per phase, and provider / ours at the compared size; Markdown."""
    phases = report.phases
    headers = [f"{p.implementation} {p.triggers:,} (cap {p.capacity:,})" for p in phases]
    ratio = report.comparison
    bound = " (capacity bound)" if ratio is not None and ratio.capacity_bound else ""
    lines = [
        "| real `airflow triggerer`, PostgreSQL | " + " | ".join(headers)
        + (f" | provider / ours at {ratio.triggers:,}{bound} |" if ratio else " |"),
        "|---" * (len(phases) + 1 + bool(ratio)) + "|",
    ]  # fmt: skip
    for label, name, spec in ROWS:
        cells = [_cell(p, label, name, spec) for p in phases]
        if ratio is not None:
            cells.append(_fmt(getattr(ratio, RATIOS[name]), "{:,.2f}x") if name in RATIOS else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if report.rss_slope_bytes_per_task is not None:
        lines.append("")
        lines.append(
            "ours, RSS slope over the tasks running: "
            f"{report.rss_slope_bytes_per_task / 1024:,.1f} KiB per task"
        )
    return "\n".join(lines)


def verdicts(report: TriggererReport) -> list[str]:
    """One line per phase: which limit bound first, in words."""
    words = {
        CAPACITY: "[triggerer] capacity bound first: {peak:,} of {asked:,} tasks ran at once",
        PICKUP: "pick-up bound first: capacity allowed all {asked:,}, at most {peak:,} ran at once",
        CPU: "CPU bound first: all {asked:,} ran, on {cpu:.0%} of a core",
        NONE: "no limit bound: all {asked:,} ran at once ({cpu:.0%} of a core)",
    }
    out = []
    for p in report.phases:
        text = words[p.limit_bound].format(
            peak=p.peak_assigned, asked=p.triggers, cpu=p.cpu_core_fraction or 0.0
        )
        out.append(f"{p.implementation} {p.triggers:,} (capacity {p.capacity:,}): {text}")
    return out

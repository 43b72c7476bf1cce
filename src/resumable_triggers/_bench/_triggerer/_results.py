"""The ``bench-triggerer`` report as typed values, and its JSON (the JSON round trip of ``_bench._results``).

::

    TriggererReport
    ├── bench: Provenance ............ when, the command, the machine, versions, the options
    ├── statsd: bool ................. whether Airflow's StatsD metrics could be collected
    ├── phases: (TriggererPhase, ...)  one real triggerer each: N deferred tasks, one capacity
    ├── comparison: TriggererComparison  provider / ours at the first --compare-sizes (optional)
    └── rss_slope_bytes_per_task ..... ours: least-squares slope of RSS over the tasks running (optional)

A metric that could not be measured is ``null``; ``metrics_*`` fields are ``null`` without StatsD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from resumable_triggers._bench._results import _ABSENT, JsonReport, Provenance

# Which limit stopped the triggerer from running every task it was asked to, if any.
CAPACITY = "capacity"  # [triggerer] capacity: the triggerer took no more than that many
PICKUP = "pickup"  # capacity allowed all, but they were never all running at once (50 picked up per loop)
CPU = "cpu"  # all ran, and the triggerer's tree used (nearly) a whole core
NONE = "none"  # all ran at once, with CPU to spare
LIMITS = (CAPACITY, PICKUP, CPU, NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeSeries:
    """Per sample (``t``: seconds since the seeded tasks were committed) of the triggerer's tree."""

    t: tuple[float, ...]
    cpu_core_fraction: tuple[float, ...]
    rss_bytes: tuple[float, ...]
    assigned: tuple[float, ...]  # the phase's triggers assigned to the triggerer (database)
    deferred: tuple[float, ...]  # the phase's task instances still deferred (database)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggererPhase:
    """One real ``airflow triggerer`` asked to run ``triggers`` deferred tasks at one ``capacity``.

    Latencies are seconds from the run ending at the workspace to Airflow marking its task instance
    scheduled (``scheduled_dttm``, written by the triggerer with the event)."""

    implementation: str
    triggers: int
    capacity: int
    capacity_is_default: bool
    poll_seconds: float
    lead_seconds: float
    spread_seconds: float
    wall_seconds: float
    seed_seconds: float
    # Concurrency: the most triggers assigned at once, and how long reaching min(asked, capacity) took.
    peak_assigned: int
    ramp_seconds: float | None
    limit_bound: str  # one of LIMITS
    cpu_seconds: float  # the whole tree, from the first sample after seeding to the last
    cpu_core_fraction: float | None
    rss_idle_bytes: int  # the same triggerer before any task was seeded
    rss_peak_bytes: int
    rss_bytes_per_task: float | None  # (peak - idle) / peak_assigned
    processes_peak: int
    workspace_connections_peak: int
    database_connections_peak: int
    # Airflow's log: "Triggerer's async thread was blocked for X seconds".
    stalls: int
    stall_max_seconds: float | None
    stall_total_seconds: float
    # Airflow's StatsD metrics (None without StatsD).
    metrics_blocked_main_thread: float | None
    metrics_running_peak: float | None
    metrics_capacity_left_min: float | None
    events: int
    wrong_outcomes: int
    undelivered: int
    error_details: tuple[str, ...]  # the first 20
    outcomes: Mapping[str, int]
    latency_p50_seconds: float | None
    latency_p99_seconds: float | None
    latency_max_seconds: float | None
    latencies_seconds: tuple[float, ...]  # sorted
    series: TreeSeries


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggererComparison:
    """provider / ours on the same number of tasks, neither bound by capacity (None: not measurable)."""

    triggers: int
    # True when capacity bound either phase (run without --no-raise-capacity to avoid it): then the
    # ratios compare two triggerers that each ran only ``capacity`` of the tasks at once.
    capacity_bound: bool
    cpu_seconds: float | None
    rss_bytes_per_task: float | None
    workspace_connections_peak: float | None
    database_connections_peak: float | None
    stalls: float | None
    stall_max_seconds: float | None
    latency_p99_seconds: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggererReport(JsonReport):
    bench: Provenance
    statsd: bool
    phases: tuple[TriggererPhase, ...]
    comparison: TriggererComparison | None = field(default=None, metadata=_ABSENT)
    rss_slope_bytes_per_task: float | None = field(default=None, metadata=_ABSENT)

"""The ``bench-capacity`` report as typed values, and its JSON (the same encoding as ``_results``)::

    CapacityReport
    ├── bench: Provenance ............ when, the command, the machine, versions, the parsed options
    ├── limit, burst, interval, slack  the workspace's rate limit and what "polled in time" means
    ├── ours: CapacityCurve .......... one CapacityPoint per size, the capacity measured and computed
    ├── provider: CapacityCurve ...... the same for the provider's trigger            (optional)
    └── capacity_ratio ............... ours' measured capacity / the provider's         (optional)

Every key of the JSON is a field name below, in field order; ``from_json(to_json())`` gives back an
equal report, and a missing or unknown key is an error naming where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from resumable_triggers._bench._results import _ABSENT, JsonReport, Provenance


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityPoint:
    """One implementation watching ``runs`` runs for ``window_seconds`` behind the workspace's limit.

    The window is a warm-up (triggers start spread over one interval, then one more interval) and a
    measured stretch. 429s count over the whole window; rates and requests per run-interval over
    the measured stretch only. Probe runs end at known, evenly spaced times inside the measured
    stretch (every other run outlives the window); their detection latency (end at the workspace to
    event) says how stale a run's status can get, so it stands for the effective interval of runs
    watched in bulk. ``poll_gap_*``: over the runs that outlive the window, the longest stretch of the
    measured one without a successful ``runs/get`` of the run (edges included), for the trigger that
    polls runs one by one (the provider's); None for ours, which lists them.
    """

    implementation: str  # "ours" or "provider"
    runs: int
    window_seconds: float
    measured_seconds: float
    # Our triggers' request budget (--requests-per-second); None for the provider's, which has none.
    budget_requests_per_second: float | None
    requests_total: int  # in the measured stretch, the triggers' own
    requests_by_endpoint: Mapping[str, int]
    requests_per_run_interval: float
    requests_per_second_mean: float
    requests_per_second_max_1s: int  # the busiest sliding 1 s window of the whole window
    responses_429: int
    responses_429_per_interval: tuple[int, ...]  # per interval from the start of the window
    triggers_failed: int  # triggers whose run() raised (the provider's give up after repeated 429s)
    failure_details: tuple[str, ...]  # the first 10
    probes: int
    probes_detected: int  # probes whose event arrived within the window
    detection_latency_p50_seconds: float | None
    detection_latency_p99_seconds: float | None
    detection_latency_max_seconds: float | None
    poll_gap_p99_seconds: float | None
    poll_gap_max_seconds: float | None
    # Every probe detected within the interval + slack and no poll gap longer (None: nothing to tell).
    polled_within_interval: bool | None
    request_log_truncated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityCurve:
    """One implementation at every size. ``capacity``: the largest measured size below the first
    that got a 429 or let a run go unpolled for longer than the interval + slack (None: even the
    smallest did); ``expected_capacity``: R * S / ``model_requests_per_run_interval``."""

    implementation: str
    points: tuple[CapacityPoint, ...]
    capacity: int | None
    first_failing_runs: int | None
    passes_above_failure: bool
    model_requests_per_run_interval: float
    expected_capacity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityReport(JsonReport):
    bench: Provenance
    limit_requests_per_second: float
    limit_burst: int
    poll_seconds: float
    slack_seconds: float
    ours: CapacityCurve
    provider: CapacityCurve | None = field(default=None, metadata=_ABSENT)
    # ours.capacity / provider.capacity, from this one run; None when either is None or the provider
    # passed every size. A lower bound when ours passed every size (ours.first_failing_runs None).
    capacity_ratio: float | None = field(default=None, metadata=_ABSENT)

    def curves(self) -> tuple[CapacityCurve, ...]:
        """The curves measured, ours first."""
        return (self.ours,) if self.provider is None else (self.ours, self.provider)

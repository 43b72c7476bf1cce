"""The bench report as typed values, and the JSON ``resumable-triggers bench --json`` writes from them.

Every key of the JSON is a field name below, in field order; ``_metrics`` and ``_report`` build these
values, ``_report`` and ``_plot`` read their fields, and no module spells a key::

    BenchReport
    ├── bench: Provenance ............. when, the command, the Machine, versions, the parsed options
    ├── ours: MainResult .............. our trigger at --runs
    ├── ours_at_compare_runs .......... ours again at --compare-runs, when that differs   (optional)
    ├── provider: MainResult .......... the provider's trigger at --compare-runs           (optional)
    ├── comparison: Comparison ........ provider / ours on the same runs                   (optional)
    ├── restart_storm: RestartStorm ... ours and, with --compare, provider: StormResult    (optional)
    ├── memory: Memory ................ memory per trigger: slopes over sizes, K repeats     (optional)
    └── targets: (Target, ...) ........ the issue's targets, checked

    Memory
    ├── ours, provider: MemoryResult .. per repeat a MemoryRepeat (points, slopes); Spreads of slopes
    └── comparison: MemoryComparison .. provider / ours per measure: a MemoryRatio, or "within noise"

``ours`` is absent from a ``--memory-only`` report, which has only ``memory``.

    PhaseResult ........ what any phase measured, and the settings it ran with
    ├── MainResult ..... + requests per run-interval, detection latency, events and their outcomes
    └── StormResult .... + requests per second against the budget and the limit, first polls

Arrays are tuples and free-form objects ``Mapping``s: read-only all the way down. Two kinds of ``None``:
a metric that could not be measured is written as ``null``; a field with ``_ABSENT`` metadata (an
optional section, or a field that older committed reports predate) is left out of the JSON instead, and
reading a report that lacks it gives ``None``. So ``docs/bench.json``, written before phases recorded
their schedule (``lead_seconds``, ``spread_seconds``), reads and writes back unchanged. Any other
missing or unknown key is an error naming where it is.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

_ABSENT_WHEN_NONE = "absent_when_none"
# Field metadata: left out of the JSON while None, and None when the JSON lacks it.
_ABSENT = {_ABSENT_WHEN_NONE: True}


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One value per sample of the trigger process, taken from outside; ``t`` is seconds since the
    phase started. CPU is a share of one core; requests are those the emulator counted."""

    t: tuple[float, ...]
    cpu_core_fraction: tuple[float, ...]
    rss_bytes: tuple[float, ...]
    connections: tuple[float, ...]
    requests_per_second: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseResult:
    """What every phase measured of its trigger process, with the settings the phase ran."""

    implementation: str  # "ours" or "provider"
    runs: int
    poll_seconds: float
    # The schedule the phase ran (the plot draws when runs ended from these, never re-deriving them).
    # None only in reports written before phases recorded it.
    lead_seconds: float | None = field(default=None, metadata=_ABSENT)
    spread_seconds: float | None = field(default=None, metadata=_ABSENT)
    wall_seconds: float
    cpu_seconds: float
    cpu_core_fraction: float | None
    # While every run is watched and none finishes: what watching alone costs, per run-interval.
    # None in storm phases, which have no such stretch.
    steady_cpu_core_fraction: float | None
    steady_cpu_ms_per_run_interval: float | None
    rss_baseline_bytes: int
    rss_peak_bytes: int
    rss_bytes_per_run: int
    connections_peak: int
    loop_lag_max_seconds: float
    # (seconds since start, worst lag in that second)
    loop_lag_by_second: tuple[tuple[int, float], ...]
    # Longest garbage-collector pause per generation (0, 1, 2).
    gc_pause_max_seconds: tuple[float, ...]
    greenback_portal: bool
    gc_freeze: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MainResult(PhaseResult):
    """A main phase: N triggers until every run's event fired. Latencies are seconds from the run
    ending at the workspace to its event; ``None`` percentiles mean no event arrived."""

    requests_total: int
    requests_by_endpoint: Mapping[str, int]
    requests_per_run_interval: float | None
    responses_429: int
    detection_latency_p50_seconds: float | None
    detection_latency_p99_seconds: float | None
    detection_latency_max_seconds: float | None
    events: int
    # Wrong outcomes, runs without an event and the worker's own errors.
    errors: int
    error_details: tuple[str, ...]  # the first 20
    outcomes: Mapping[str, int]  # SUCCESS / FAILED / WATCH_ERROR -> events
    latencies_seconds: tuple[float, ...]  # sorted
    series: Series


@dataclass(frozen=True, slots=True, kw_only=True)
class StormResult(PhaseResult):
    """A restart storm: N triggers started at once on long runs, behind the emulator's rate limit."""

    # The provider's trigger has no budget (None); the window ratio still compares it with ours.
    budget_requests_per_second: float | None
    budget_burst: int
    emulator_limit_requests_per_second: float
    emulator_limit_burst: int
    requests_by_endpoint: Mapping[str, int]
    requests_per_second: tuple[int, ...]  # arrivals at the emulator, per second since the start
    max_requests_in_1s: int
    # > 1.0 means some window saw more than the budget allows (burst + rate * width).
    max_window_to_budget_ratio: float
    max_excess_requests: float | None  # None: no request at all
    within_budget: bool
    responses_429: int
    runs_polled: int
    first_poll_p50_seconds: float | None
    first_poll_p99_seconds: float | None
    first_poll_max_seconds: float | None
    errors: int  # triggers that gave up
    error_details: tuple[str, ...]  # the first 20
    series: Series
    # The emulator keeps its last 10,000 requests: older storm requests would be missing.
    request_log_truncated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """How many times more the provider's trigger costs than ours on ``runs`` runs (None: not
    measurable, e.g. ours used nothing)."""

    runs: int
    cpu_seconds: float | None
    steady_cpu: float | None
    rss_bytes_per_run: float | None
    connections_peak: float | None
    requests_per_run_interval: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One of the issue's targets: ``target`` is its text, ``met`` None when nothing was measured;
    ``applies`` is False when the run's size or interval differs from the one the target is for."""

    target: str
    measured: float | None
    met: bool | None
    applies: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartStorm:
    ours: StormResult
    provider: StormResult | None = field(default=None, metadata=_ABSENT)

    def by_implementation(self) -> dict[str, StormResult]:
        """The storms that ran, ours first."""
        return {s.implementation: s for s in (self.ours, self.provider) if s is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine:
    cpus: int
    cpu_model: str
    memory_bytes: int
    platform: str
    python: str
    summary: str  # one line, for the plot's title


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """What reproduces the report: the date (UTC, to the minute), the command, machine and versions."""

    date: str
    command: str
    machine: Machine
    versions: Mapping[str, str]  # distribution -> version, or "not installed"
    # The parsed command line as argparse gave it, verbatim: a copy of the CLI's options rather than
    # a second list of them to keep in step; nothing reads it but people.
    settings: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """Repeated measurements of one number: their min, median and max, and the values in order taken."""

    min: float
    median: float
    max: float
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRepeat:
    """One trigger process: triggers added in steps up to each of ``triggers``, measured after each.

    ``rss_bytes`` is the process's RSS less tracemalloc's own bookkeeping; ``traced_bytes`` what
    tracemalloc attributes to allocations since the triggers' first step began. The slopes are
    least-squares fits over the steps, in bytes per trigger: what one more trigger costs, with the
    process's baseline (Airflow, ~180 MB) and one-off costs in the intercept instead.
    """

    triggers: tuple[int, ...]
    rss_bytes: tuple[int, ...]
    traced_bytes: tuple[int, ...]
    rss_slope_bytes: float
    traced_slope_bytes: float
    wall_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryResult:
    """Memory per trigger of one implementation: ``repeats`` processes, and the spread of their slopes."""

    implementation: str
    poll_seconds: float
    greenback_portal: bool
    repeats: tuple[MemoryRepeat, ...]
    rss_bytes_per_trigger: Spread
    traced_bytes_per_trigger: Spread


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRatio:
    """provider / ours for one measure. ``ratio`` (of the medians) and its range (the least and the
    most the spreads allow) are None when the spreads overlap: then the verdict is "within noise"."""

    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    verdict: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryComparison:
    rss_bytes_per_trigger: MemoryRatio
    traced_bytes_per_trigger: MemoryRatio


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    ours: MemoryResult
    provider: MemoryResult | None = field(default=None, metadata=_ABSENT)
    comparison: MemoryComparison | None = field(default=None, metadata=_ABSENT)


_Report = TypeVar("_Report", bound="JsonReport")


class JsonReport:
    """``to_json`` / ``from_json`` for a bench's report, a frozen dataclass: keys in field order, and a
    ValueError naming a missing or unknown key on the way back. Every ``bench*`` command's report is one."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        out = _encode(self)
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_json(cls: type[_Report], raw: Mapping[str, Any]) -> _Report:
        return _decode_dataclass(cls, raw, "report")


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchReport(JsonReport):
    bench: Provenance
    ours: MainResult | None = field(default=None, metadata=_ABSENT)
    ours_at_compare_runs: MainResult | None = field(default=None, metadata=_ABSENT)
    provider: MainResult | None = field(default=None, metadata=_ABSENT)
    comparison: Comparison | None = field(default=None, metadata=_ABSENT)
    restart_storm: RestartStorm | None = field(default=None, metadata=_ABSENT)
    memory: Memory | None = field(default=None, metadata=_ABSENT)
    targets: tuple[Target, ...]

    @property
    def reference(self) -> MainResult:
        """Ours at the provider's size: what the comparison is made against."""
        reference = self.ours_at_compare_runs or self.ours
        if reference is None:
            raise ValueError("bench report: a --memory-only report has no main phase to compare")
        return reference


def _encode(value: object) -> object:
    """Typed values -> JSON values; tuples become arrays, an absent-when-None field is left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.metadata.get(_ABSENT_WHEN_NONE) and getattr(value, f.name) is None)
        }
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


D = TypeVar("D")


def _decode_dataclass(cls: type[D], raw: object, where: str) -> D:
    """``where`` is the path to ``raw`` in the report, for the error message."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"bench report: {where} should be an object, not {type(raw).__name__}")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # D is one of the dataclasses above
    unknown = raw.keys() - {f.name for f in fields}
    missing = [f.name for f in fields if f.name not in raw and not f.metadata.get(_ABSENT_WHEN_NONE)]
    problems = [f"lacks {missing}"] if missing else []
    problems += [f"has unknown keys {sorted(unknown)}"] if unknown else []
    if problems:
        raise ValueError(
            f"bench report: {where} {' and '.join(problems)}; was it written by another version of "
            "resumable-triggers? Read it with that version, or run the bench again."
        )
    # Resolved here, not at import: the annotations are strings (``from __future__ import annotations``).
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _decode(hints[f.name], raw.get(f.name), f"{where}.{f.name}") for f in fields})


def _decode(hint: Any, value: Any, where: str) -> Any:
    """JSON -> the field's type: objects into dataclasses, arrays into tuples, the rest as JSON gave."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        # Only ``X | None`` occurs; None stays None.
        [inner] = [a for a in args if a is not type(None)]
        return None if value is None else _decode(inner, value, where)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value))
        return tuple(
            _decode(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, value, strict=True))
        )
    return value

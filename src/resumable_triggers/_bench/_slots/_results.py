"""The ``bench-slots`` report as typed values, and its JSON (the bench's encoder: same rules).

::

    SlotsReport
    ├── bench: Provenance ............... when, the command, the machine, versions, the options
    ├── tasks, run_seconds, poll_seconds, sample_seconds, database, together
    ├── implementations: (ImplementationResult, ...)   ours, provider-deferrable, provider-durable
    │   ├── attempts: (Attempt, ...) .... per mapped task: its segments (processes, audit log), latency
    │   ├── slot: SlotStats ............. from the processes: segment 1, segment 2, total; p50/p95
    │   ├── audit: SlotStats ............ the same from Airflow's audit log (the cross-check)
    │   └── latency: Percentiles ........ run ended at the emulator -> task instance ``success``
    └── ratios: (Ratio, ...) ............ durable / ours and provider-deferrable / ours, per measure

Seconds everywhere. A value that could not be measured (no second segment for the durable operator,
a percentile of nothing) is ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from resumable_triggers._bench._metrics import percentile
from resumable_triggers._bench._results import JsonReport, Provenance

OURS, DEFERRABLE, DURABLE = "ours", "provider-deferrable", "provider-durable"
IMPLEMENTATIONS = (OURS, DEFERRABLE, DURABLE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles:
    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return cls(
            count=len(values),
            p50=rounded(percentile(list(values), 50)),
            p95=rounded(percentile(list(values), 95)),
            max=rounded(max(values)) if values else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotStats:
    """Seconds a worker slot was held per logical attempt: the first segment (start to deferred, or
    to the end for the durable operator), the second (resume to finish), and their total."""

    segment_1: Percentiles
    segment_2: Percentiles
    total: Percentiles
    segments_per_attempt: Mapping[str, int]  # segment count -> attempts, e.g. {"2": 30}

    @classmethod
    def of(cls, per_attempt: Sequence[Sequence[float]]) -> SlotStats:
        counts: dict[str, int] = {}
        for segs in per_attempt:
            counts[str(len(segs))] = counts.get(str(len(segs)), 0) + 1
        return cls(
            segment_1=Percentiles.of([s[0] for s in per_attempt if len(s) >= 1]),
            segment_2=Percentiles.of([s[1] for s in per_attempt if len(s) >= 2]),
            total=Percentiles.of([sum(s) for s in per_attempt if s]),
            segments_per_attempt=dict(sorted(counts.items(), key=lambda kv: int(kv[0]))),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One mapped task's try. ``segments``: seconds per slot segment from the processes;
    ``audit_segments``: from the audit log; ``audit_inside``: every audit segment lies inside its
    process segment; ``emulator_runs``: runs the emulator holds under the task's run name."""

    map_index: int
    ti_id: str
    state: str
    segments: tuple[float, ...]
    audit_segments: tuple[float, ...]
    audit_inside: bool
    emulator_runs: int
    latency_seconds: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImplementationResult:
    implementation: str  # one of IMPLEMENTATIONS
    operator: str  # how the DAG builds it, for people
    dag_id: str
    wall_seconds: float
    attempts: tuple[Attempt, ...]
    slot: SlotStats
    audit: SlotStats
    latency: Percentiles


@dataclass(frozen=True, slots=True, kw_only=True)
class Ratio:
    """``numerator / denominator`` of one measure (e.g. ``"slot total p50"``); None without both."""

    measure: str
    numerator: str
    denominator: str
    value: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotsReport(JsonReport):
    bench: Provenance
    tasks: int
    run_seconds: float
    poll_seconds: int
    sample_seconds: float
    database: str
    together: bool  # the three DAG runs ran at once, not in turns
    implementations: tuple[ImplementationResult, ...]
    ratios: tuple[Ratio, ...]

    def by_implementation(self) -> dict[str, ImplementationResult]:
        return {r.implementation: r for r in self.implementations}

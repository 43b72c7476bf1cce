"""Memory per trigger, measured so that it holds: pure functions of the numbers the trigger processes took.

One RSS delta over a ~180 MB baseline divided by N moved by 2x between identical runs: the baseline
itself drifts by megabytes (allocator arenas, lazily imported modules, the first connections). So a
repeat adds triggers in steps and ``least_squares`` fits a line through (triggers, bytes): its slope
is what one more trigger costs, and whatever is paid once lands in the intercept. Repeating the whole
process K times gives a ``Spread`` of slopes, and ``memory_ratio`` states provider / ours only when
the two spreads do not overlap; otherwise the difference is within noise and no ratio is claimed.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from resumable_triggers._bench._results import (
    Memory,
    MemoryComparison,
    MemoryRatio,
    MemoryRepeat,
    MemoryResult,
    Spread,
    Target,
)

KIB = 1024
WITHIN_NOISE = "within noise"
# Below this many triggers a step adds less memory than the allocator hands out at once (an arena,
# a page run), so a slope over toy steps is granularity, not cost: the targets are shown, not judged.
TARGET_TRIGGERS = 1000


@dataclass(frozen=True, slots=True)
class Fit:
    """``y = slope * x + intercept``, fitted by least squares."""

    slope: float
    intercept: float


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """The least-squares line through the points; at least two distinct ``xs`` are needed."""
    if len(xs) != len(ys):
        raise ValueError(f"least_squares: {len(xs)} xs but {len(ys)} ys")
    if len(set(xs)) < 2:
        raise ValueError("least_squares: a slope needs at least two different sizes")
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return Fit(slope=slope, intercept=mean_y - slope * mean_x)


def spread(values: Sequence[float]) -> Spread:
    """Min, median and max of repeated measurements (at least one)."""
    if not values:
        raise ValueError("spread: no values")
    return Spread(min=min(values), median=statistics.median(values), max=max(values), values=tuple(values))


def memory_ratio(ours: Spread, provider: Spread) -> MemoryRatio:
    """provider / ours, stated only when the spreads allow it: every provider value above every one
    of ours (or below), so the ranges do not overlap. Otherwise "within noise", and no number."""
    separated = provider.min > ours.max or provider.max < ours.min
    if not separated or min(ours.min, provider.min) <= 0:
        return MemoryRatio(ratio=None, ratio_low=None, ratio_high=None, verdict=WITHIN_NOISE)
    ratio = provider.median / ours.median
    low, high = provider.min / ours.max, provider.max / ours.min
    verdict = (
        f"provider {ratio:.1f}x ours ({low:.1f}x to {high:.1f}x)"
        if ratio >= 1
        else f"provider {1 / ratio:.1f}x less than ours ({1 / high:.1f}x to {1 / low:.1f}x)"
    )
    return MemoryRatio(
        ratio=round(ratio, 2), ratio_low=round(low, 2), ratio_high=round(high, 2), verdict=verdict
    )


def memory_repeat(
    triggers: Sequence[int], rss_bytes: Sequence[int], traced_bytes: Sequence[int], wall_seconds: float
) -> MemoryRepeat:
    """One process's steps, with their slopes."""
    return MemoryRepeat(
        triggers=tuple(triggers),
        rss_bytes=tuple(rss_bytes),
        traced_bytes=tuple(traced_bytes),
        rss_slope_bytes=round(least_squares(triggers, rss_bytes).slope, 1),
        traced_slope_bytes=round(least_squares(triggers, traced_bytes).slope, 1),
        wall_seconds=round(wall_seconds, 1),
    )


def memory_result(
    implementation: str, repeats: Sequence[MemoryRepeat], *, poll_seconds: float, greenback: bool
) -> MemoryResult:
    return MemoryResult(
        implementation=implementation,
        poll_seconds=poll_seconds,
        greenback_portal=greenback,
        repeats=tuple(repeats),
        rss_bytes_per_trigger=spread([r.rss_slope_bytes for r in repeats]),
        traced_bytes_per_trigger=spread([r.traced_slope_bytes for r in repeats]),
    )


def memory(ours: MemoryResult, provider: MemoryResult | None) -> Memory:
    comparison = None
    if provider is not None:
        comparison = MemoryComparison(
            rss_bytes_per_trigger=memory_ratio(ours.rss_bytes_per_trigger, provider.rss_bytes_per_trigger),
            traced_bytes_per_trigger=memory_ratio(
                ours.traced_bytes_per_trigger, provider.traced_bytes_per_trigger
            ),
        )
    return Memory(ours=ours, provider=provider, comparison=comparison)


def memory_targets(report: Memory) -> tuple[Target, ...]:
    """The memory targets, checked against the slopes: ours at most 8 KiB per trigger in every
    repeat (its max); the provider at least 5x ours only where the spreads allow a ratio at all.
    They apply only when the largest step reaches ``TARGET_TRIGGERS``."""
    ours = report.ours.rss_bytes_per_trigger
    applies = max((max(r.triggers) for r in report.ours.repeats), default=0) >= TARGET_TRIGGERS
    out = [
        Target(
            target="RSS slope <= 8 KiB per trigger, every repeat",
            measured=ours.max,
            met=ours.max <= 8 * KIB,
            applies=applies,
        )
    ]
    if report.comparison is not None:
        rss = report.comparison.rss_bytes_per_trigger
        out.append(
            Target(
                target="memory (RSS slope) vs provider >= 5x less, beyond the spread",
                measured=rss.ratio_low,
                met=None if rss.ratio_low is None else rss.ratio_low >= 5,
                applies=applies,
            )
        )
    return tuple(out)


def _kib(spread: Spread) -> str:
    return f"{spread.median / KIB:.2f} KiB ({spread.min / KIB:.2f}-{spread.max / KIB:.2f})"


def memory_table(report: Memory) -> str:
    """Medians with min-max of the slopes, per implementation, and the verdicts; Markdown."""
    results = [r for r in (report.ours, report.provider) if r is not None]
    steps = ", ".join(f"{n:,}" for n in report.ours.repeats[0].triggers) if report.ours.repeats else "-"
    lines = [
        f"| memory per trigger (slope over {steps} triggers), median (min-max) | "
        + " | ".join(f"{r.implementation} (x{len(r.repeats)})" for r in results)
        + (" | provider / ours |" if report.comparison else " |"),
        "|---" * (len(results) + 1 + bool(report.comparison)) + "|",
    ]
    rows = [
        ("RSS", lambda r: r.rss_bytes_per_trigger, lambda c: c.rss_bytes_per_trigger),
        ("tracemalloc", lambda r: r.traced_bytes_per_trigger, lambda c: c.traced_bytes_per_trigger),
    ]
    for label, of, ratio in rows:
        cells = [_kib(of(r)) for r in results]
        if report.comparison is not None:
            cells.append(ratio(report.comparison).verdict)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

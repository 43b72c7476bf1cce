"""Memory per trigger: the fit, the spread and the ratio verdict, on synthetic numbers."""

from __future__ import annotations

import json

import pytest

from resumable_triggers._bench._memory import (
    WITHIN_NOISE,
    Fit,
    least_squares,
    memory,
    memory_ratio,
    memory_repeat,
    memory_result,
    memory_table,
    memory_targets,
    spread,
)
from resumable_triggers._bench._results import BenchReport, Machine, MemoryRepeat, Provenance

STEPS = (250, 500, 1000, 2000)


def repeat(
    per_trigger: float, baseline: float = 180e6, noise: tuple[float, ...] = (0, 0, 0, 0)
) -> MemoryRepeat:
    """A synthetic repeat: ``baseline + per_trigger * n`` plus ``noise`` at each step; tracemalloc
    sees half of it, without the baseline."""
    rss = [round(baseline + per_trigger * n + e) for n, e in zip(STEPS, noise, strict=True)]
    traced = [round(per_trigger / 2 * n) for n in STEPS]
    return memory_repeat(STEPS, rss, traced, wall_seconds=12.34)


def test_the_fit_recovers_the_per_trigger_cost_whatever_the_baseline() -> None:
    """An exact line gives its slope and intercept; a baseline of 180 MB moves only the intercept."""
    assert Fit(slope=4096.0, intercept=1000.0) == least_squares([1, 2, 3], [5096, 9192, 13288])
    assert 4096.0 == pytest.approx(least_squares(STEPS, [180e6 + 4096 * n for n in STEPS]).slope)
    assert 4096.0 == pytest.approx(least_squares(STEPS, [250e6 + 4096 * n for n in STEPS]).slope)


def test_the_fit_averages_out_noise_that_one_delta_would_carry_whole() -> None:
    """+-200 KB of noise at the steps moves the slope by ~10 %, where one delta at 1,000 triggers
    over the baseline would be off by 200 B per trigger (5 %), and at 250 triggers by 20 %."""
    noisy = repeat(4096, noise=(200e3, -200e3, 200e3, -200e3))
    assert 3600 < noisy.rss_slope_bytes < 4600


def test_the_fit_needs_two_different_sizes() -> None:
    """One size (or mismatched lists) has no slope: an error, not a division by zero."""
    with pytest.raises(ValueError, match="two different sizes"):
        least_squares([500, 500], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 xs but 3 ys"):
        least_squares([1, 2], [1.0, 2.0, 3.0])


def test_spread_is_min_median_max_of_the_repeats() -> None:
    """The values are kept in the order they were taken."""
    measured = spread([5.0, 3.0, 9.0])
    assert (3.0, 5.0, 9.0, (5.0, 3.0, 9.0)) == (measured.min, measured.median, measured.max, measured.values)


def test_a_ratio_is_stated_when_the_ranges_do_not_overlap() -> None:
    """provider 20-30 KiB against ours 4-5 KiB: the median ratio, and the range the spreads allow."""
    ratio = memory_ratio(spread([4.0, 4.5, 5.0]), spread([20.0, 26.0, 30.0]))
    assert (5.78, 4.0, 7.5) == (ratio.ratio, ratio.ratio_low, ratio.ratio_high)
    assert "provider 5.8x ours (4.0x to 7.5x)" == ratio.verdict


def test_overlapping_ranges_are_within_noise_and_state_no_ratio() -> None:
    """The case that motivated this: 4.2 and 9.8 KiB for ours in two identical runs, the provider
    within that range once: no ratio is claimed."""
    ratio = memory_ratio(spread([4.2, 9.8]), spread([9.5, 26.2]))
    assert (None, None, None, WITHIN_NOISE) == (ratio.ratio, ratio.ratio_low, ratio.ratio_high, ratio.verdict)


def test_a_provider_cheaper_than_ours_is_said_so() -> None:
    """The verdict reads the right way round when ours costs more."""
    assert (
        "provider 2.3x less than ours (1.5x to 3.0x)"
        == memory_ratio(spread([6.0, 8.0, 9.0]), spread([3.0, 4.0])).verdict
    )


def test_targets_check_every_repeat_of_ours_and_the_ratio_beyond_the_spread() -> None:
    """Ours must stay under 8 KiB per trigger in its worst repeat; the provider's 5x must hold at the
    low end of the ratio's range; a within-noise comparison checks nothing."""
    ours = memory_result("ours", [repeat(4096), repeat(4300)], poll_seconds=30, greenback=False)
    provider = memory_result("provider", [repeat(26e3), repeat(27e3)], poll_seconds=30, greenback=False)
    close = memory_result("provider", [repeat(4000), repeat(4400)], poll_seconds=30, greenback=False)

    assert [True, True] == [t.met for t in memory_targets(memory(ours, provider))]
    assert [True, None] == [t.met for t in memory_targets(memory(ours, close))]


def test_the_table_shows_medians_ranges_and_verdicts() -> None:
    """One row per measure, ours and the provider side by side, then the verdict."""
    ours = memory_result("ours", [repeat(4096)] * 3, poll_seconds=30, greenback=False)
    provider = memory_result("provider", [repeat(26 * 1024)] * 3, poll_seconds=30, greenback=False)
    lines = memory_table(memory(ours, provider)).splitlines()

    assert "| memory per trigger (slope over 250, 500, 1,000, 2,000 triggers), median (min-max) |" in lines[0]
    assert lines[2].startswith("| RSS | 4.00 KiB (4.00-4.00) | 26.00 KiB (26.00-26.00) | provider 6.5x ours")
    assert lines[3].startswith("| tracemalloc | 2.00 KiB (2.00-2.00) | 13.00 KiB")


def test_a_memory_only_report_round_trips_through_json() -> None:
    """A report with only the memory section (no main phase) writes and reads back equal, through
    the JSON text bench --json writes."""
    ours = memory_result("ours", [repeat(4096), repeat(4200), repeat(4150)], poll_seconds=30, greenback=False)
    provider = memory_result("provider", [repeat(26e3)] * 3, poll_seconds=30, greenback=False)
    machine = Machine(cpus=2, cpu_model="x", memory_bytes=1, platform="p", python="3.11", summary="s")
    report = BenchReport(
        bench=Provenance(date="d", command="c", machine=machine, versions={}, settings={"memory_only": True}),
        memory=memory(ours, provider),
        targets=memory_targets(memory(ours, provider)),
    )
    text = json.dumps(report.to_json(), indent=1)

    assert report == BenchReport.from_json(json.loads(text))
    assert "ours" not in json.loads(text)


def test_toy_steps_show_the_memory_targets_without_judging_them() -> None:
    """Steps of 4 and 8 triggers add less than one allocator arena: a 64 KiB jump reads as 16 KiB a
    trigger. The target is still shown with its verdict, but it does not apply (the smoke bench,
    on a loaded machine, failed on exactly this)."""
    rss = [180_000_000, 180_000_000 + 64 * 1024]
    toy = memory_repeat([4, 8], rss, [4_000, 8_000], wall_seconds=1.0)
    ours = memory_result("ours", [toy, toy], poll_seconds=1, greenback=False)

    (target,) = memory_targets(memory(ours, None))
    assert (False, False) == (target.met, target.applies)

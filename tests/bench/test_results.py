"""The bench report's typed values read the committed ``docs/bench.json`` and write it back unchanged.

``docs/bench.json`` predates phases recording their schedule (``lead_seconds``, ``spread_seconds``):
it also pins that such an older report still loads, and still draws.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resumable_triggers._bench._memory import memory_targets
from resumable_triggers._bench._plot import plot
from resumable_triggers._bench._report import comparison, table, targets
from resumable_triggers._bench._results import BenchReport

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "bench.json"
COMMITTED_MEMORY = COMMITTED.with_name("bench-memory.json")


@pytest.fixture(scope="module")
def committed() -> BenchReport:
    return BenchReport.from_json(json.loads(COMMITTED.read_text()))


def test_committed_report_writes_back_byte_for_byte(committed: BenchReport) -> None:
    """Reading docs/bench.json into the typed report and writing it as ``bench --json`` does gives
    the same file: no key renamed, reordered, added or dropped, no int turned into a float."""
    assert COMMITTED.read_text() == json.dumps(committed.to_json(), indent=1) + "\n"


def test_committed_memory_report_writes_back_byte_for_byte() -> None:
    """docs/bench-memory.json, a --memory-only report (a memory section, no main phase), reads into the
    typed report and writes back the same file; its targets are the memory ones, recomputed alike."""
    report = BenchReport.from_json(json.loads(COMMITTED_MEMORY.read_text()))
    assert COMMITTED_MEMORY.read_text() == json.dumps(report.to_json(), indent=1) + "\n"
    assert report.ours is None
    assert report.memory is not None
    assert report.targets == memory_targets(report.memory)


def test_a_report_older_than_the_recorded_schedule_reads_it_as_unknown(committed: BenchReport) -> None:
    """The committed report's phases have no lead_seconds / spread_seconds: None, not a guess."""
    assert committed.ours is not None
    assert (None, None) == (committed.ours.lead_seconds, committed.ours.spread_seconds)


def test_targets_and_comparison_recomputed_from_the_typed_phases_match_the_committed_ones(
    committed: BenchReport,
) -> None:
    """_report, reading typed fields, reaches the verdicts written into the committed report."""
    assert committed.provider is not None
    assert committed.restart_storm is not None
    assert committed.ours is not None
    assert committed.comparison == comparison(committed.reference, committed.provider)
    assert committed.targets == targets(committed.ours, committed.comparison, committed.restart_storm.ours)


def test_table_shows_every_phase_and_storm(committed: BenchReport) -> None:
    """One column per main phase (ours at both sizes, the provider), one per storm."""
    lines = table(committed).splitlines()
    assert "| | ours (10,000) | ours (1,000) | provider (1,000) |" == lines[0]
    assert "| restart storm | ours (10,000) | provider (1,000) |" in lines


def test_plot_draws_a_report_without_a_recorded_schedule(committed: BenchReport, tmp_path: Path) -> None:
    """The plot leaves the run-end range out of its title rather than failing on an older report."""
    plot(committed, str(tmp_path / "bench.png"))
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_a_report_missing_a_key_names_where() -> None:
    """A report from another version fails with the path of the missing key, not a TypeError."""
    raw = json.loads(COMMITTED.read_text())
    del raw["restart_storm"]["ours"]["series"]["t"]
    with pytest.raises(ValueError) as caught:
        BenchReport.from_json(raw)
    assert "report.restart_storm.ours.series lacks ['t']" in str(caught.value)


def test_a_report_with_an_unknown_key_names_it() -> None:
    """A newer report is not silently truncated: the unknown key is named."""
    raw = json.loads(COMMITTED.read_text())
    raw["provider"]["new_metric"] = 1
    with pytest.raises(ValueError) as caught:
        BenchReport.from_json(raw)
    assert "report.provider has unknown keys ['new_metric']" in str(caught.value)

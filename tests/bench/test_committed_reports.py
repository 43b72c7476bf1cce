"""The real-part benches' committed reports (docs/bench-triggerer.json, -slots.json, -capacity.json)
read into their typed values and write back byte for byte, so the numbers the docs quote stay loadable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resumable_triggers._bench._capacity_results import CapacityReport
from resumable_triggers._bench._slots._results import SlotsReport
from resumable_triggers._bench._triggerer._results import TriggererReport

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("name", "report_type"),
    [
        ("bench-triggerer.json", TriggererReport),
        ("bench-slots.json", SlotsReport),
        ("bench-capacity.json", CapacityReport),
    ],
)
def test_committed_report_writes_back_byte_for_byte(name: str, report_type: Any) -> None:
    """No key renamed, reordered, added or dropped, no int turned into a float."""
    text = (DOCS / name).read_text()
    report = report_type.from_json(json.loads(text))
    assert text == json.dumps(report.to_json(), indent=1) + "\n"

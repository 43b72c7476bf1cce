"""The campaign's timeline: what it draws, from a synthetic history, and a picture whose size does not
grow with the campaign (an hour's campaign drawn one row per task was 3,300 px tall)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from resumable_triggers.testing.chaos import (
    ActionEvent,
    FaultEvent,
    History,
    RequestEvent,
    RunRecord,
    Violation,
)
from resumable_triggers.testing.chaos._plot import (
    MIN_BAR_SECONDS,
    SIZE_INCHES,
    RunRow,
    action_lanes,
    active_runs,
    fault_lanes,
    plot,
    run_rows,
)

T0 = 1_000.0


def _history(tasks: int = 3) -> History:
    runs = [
        RunRecord(100 + i, f"dag|run-{i}|etl|-1", T0 + 10 + i, T0 + 60 + i, "TERMINATED", "SUCCESS")
        for i in range(tasks)
    ]
    return History(
        seed=7,
        started=T0,
        ended=T0 + 300,
        runs=(
            *runs,
            RunRecord(900, "dag|run-x|etl|-1", T0 + 20, None, "RUNNING"),
            RunRecord(901, None, T0 + 5, T0 + 9, "TERMINATED", "SUCCESS"),  # a foreign run
        ),
        faults=(
            FaultEvent(T0 + 50, T0 + 80, "triggerer[1]", "sigstop"),
            FaultEvent(T0 + 30, T0 + 30, "triggerer[0]", "sigkill"),
            FaultEvent(T0 + 40, T0 + 45, "triggerer[0]", "sigstop"),
            FaultEvent(T0 + 70, T0 + 70, "scheduler[0]", "sigkill", ok=False),  # found no process
            FaultEvent(T0 + 90, T0 + 95, "emulator", "429_storm"),
        ),
        actions=(
            ActionEvent(T0 + 100, T0 + 101, "clear", "dag|run-0|etl|-1"),
            ActionEvent(T0 + 110, T0 + 111, "mark_failed", "dag|run-1|etl|-1", ok=False),
        ),
        requests=(RequestEvent(T0 + 120, "POST", "runs/cancel", 200, 100),),
    )


def test_faults_of_one_kind_on_sibling_targets_share_a_lane_and_misses_are_left_out() -> None:
    """triggerer[0] and triggerer[1] are one lane per kind; a fault that found no process is not
    drawn; a SIGKILL (over at once) is still a visible bar."""
    lanes = fault_lanes(_history())

    assert lanes == {
        "429_storm emulator": [(90.0, 5.0)],
        "sigkill triggerer": [(30.0, MIN_BAR_SECONDS)],
        "sigstop triggerer": [(40.0, 5.0), (50.0, 30.0)],
    }


def test_only_the_actions_airflow_accepted_are_drawn() -> None:
    """A refused mark-failed is not an action that happened."""
    assert action_lanes(_history()) == {"clear": [100.0]}


def test_runs_panel_holds_the_tasks_runs_by_start_and_counts_the_active_ones() -> None:
    """The foreign run is left out; the run still active at the end keeps counting."""
    rows = run_rows(_history(tasks=2))

    assert rows == [
        RunRow(10.0, 60.0, "SUCCESS"),
        RunRow(11.0, 61.0, "SUCCESS"),
        RunRow(20.0, None, None),
    ]
    assert active_runs(rows) == [(10.0, 1), (11.0, 2), (20.0, 3), (60.0, 2), (61.0, 1)]


@pytest.mark.parametrize("tasks", [3, 400])
def test_the_picture_has_the_same_size_for_a_short_and_a_long_campaign(tasks: int, tmp_path: Path) -> None:
    """PNG width and height (read from its header) are the fixed size, with 3 tasks as with 400."""
    pytest.importorskip("matplotlib")
    history = _history(tasks=tasks)
    path = tmp_path / "timeline.png"

    problem = plot(
        history, [Violation("one-run-per-attempt", "dag|run-0|etl|-1", T0 + 150, "synthetic")], path
    )

    assert problem is None
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (round(SIZE_INCHES[0] * 110), round(SIZE_INCHES[1] * 110))

"""``resumable-triggers chaos`` without a deployment: the plan it would run, and judging a recorded
history (``--check``), whose exit status says whether an invariant was violated."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from resumable_triggers._cli import main
from resumable_triggers.testing.chaos import History, Plan, RequestEvent, RunRecord, TiSample, make_plan

TI = "dag|run-1|etl|-1"


def _write(path: Path, history: History) -> Path:
    path.write_text(json.dumps({"history": history.to_json()}))
    return path


def _clean() -> History:
    return History(
        seed=9,
        started=0.0,
        ended=100.0,
        runs=(RunRecord(1, TI, 5, 35, "TERMINATED", "SUCCESS"),),
        samples=(TiSample(3, TI, "deferred", 1), TiSample(37, TI, "success", 1, end_date=36)),
        xcom_run_ids={TI: 1},
    )


def test_plan_only_prints_the_seeds_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["chaos", "--seed", "4", "--minutes", "3", "--plan-only"])
    assert make_plan(seed=4, minutes=3) == Plan.from_json(json.loads(capsys.readouterr().out))


def test_check_of_a_clean_history_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["chaos", "--check", str(_write(tmp_path / "h.json", _clean()))])
    assert "one-run-per-attempt              ok" in capsys.readouterr().out


def test_check_of_a_violating_history_exits_1_naming_seed_and_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = dataclasses.replace(_clean(), requests=(RequestEvent(30, "POST", "runs/cancel", 200, 1),))
    assert 1 == main(["chaos", "--check", str(_write(tmp_path / "h.json", history))])
    out = capsys.readouterr().out
    assert "VIOLATION seed=9 invariant=cancel-needs-a-reason" in out


def test_bad_minutes_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == main(["chaos", "--minutes", "0", "--plan-only"])
    assert "minutes=0" in capsys.readouterr().err

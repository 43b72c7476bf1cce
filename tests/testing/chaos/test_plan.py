"""The campaign plan: pure and seeded, JSON round-trips, and DAG files that parse."""

from __future__ import annotations

import ast
import json

import pytest

from resumable_triggers.testing.chaos import Plan, make_plan
from resumable_triggers.testing.chaos._dags import parse_identity, render_dag, ti_identity


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    """Reproducible: a seed names a campaign."""
    assert make_plan(seed=5, minutes=10) == make_plan(seed=5, minutes=10)
    assert make_plan(seed=5, minutes=10) != make_plan(seed=6, minutes=10)


def test_a_plan_survives_its_json_round_trip() -> None:
    """``--replay`` reads back exactly the plan that was run."""
    plan = make_plan(seed=11, minutes=10, topology="ha")
    assert plan == Plan.from_json(json.loads(plan.dumps()))


def test_a_ten_minute_plan_has_every_kind_of_workload_fault_and_action() -> None:
    """Mapped, in-worker, run-now, failing and timing-out tasks; overlapping faults of every family."""
    plan = make_plan(seed=1, minutes=10)
    tasks = [task for dag in plan.dags for task in dag.tasks]
    assert any(t.map_count for t in tasks)
    assert any(not t.deferrable for t in tasks)
    assert {"submit_run", "run_now"} == {t.operator for t in tasks}
    assert {"success", "fail_then_succeed", "always_fail", "timeout"} <= {t.outcome for t in tasks} | {
        t.outcome for seed in range(2, 6) for d in make_plan(seed=seed, minutes=10).dags for t in d.tasks
    }
    targets = {f.target for f in plan.faults}
    assert "emulator" in targets
    assert targets & {"task-process", "supervisor"}
    assert targets & {"scheduler", "triggerer", "api-server", "dag-processor"}
    assert plan.actions
    moments = [f.at_seconds for f in plan.faults]
    assert moments == sorted(moments)
    assert max(moments) <= plan.active_seconds


def test_bad_arguments_are_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match="minutes=0"):
        make_plan(seed=1, minutes=0)
    with pytest.raises(ValueError, match="topology"):
        make_plan(seed=1, minutes=1, topology="triple")  # type: ignore[arg-type]


def test_generated_dag_files_are_python_and_carry_the_task_identity() -> None:
    """Every DAG file parses; each run names its task instance so that the checker can attribute it."""
    plan = make_plan(seed=3, minutes=5)
    for dag in plan.dags:
        source = render_dag(dag, seed=plan.seed)
        ast.parse(source)
        assert "{{ ti.map_index }}" in source
    assert ("d", "r", "t", 2) == parse_identity(ti_identity("d", "r", "t", 2))
    assert parse_identity("e2e something") is None

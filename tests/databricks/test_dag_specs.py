"""Every spec the shipped and tested DAGs build passes the workspace's checks (examples, the demo,
the end-to-end and the fault-injection DAGs), so tightening the checks never strands a DAG."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from resumable_triggers.databricks._operators import _DatabricksRunOperator

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ["examples/dags", "src/resumable_triggers/_demo/dags", "tests/e2e/dags", "tests/dags"]
# This one's spec is broken on purpose: it proves an invalid spec fails before any API call.
INVALID_ON_PURPOSE = {"dbx_invalid_spec"}


def _operators(folder: str) -> Iterator[tuple[str, _DatabricksRunOperator, Any]]:
    from airflow.dag_processing.dagbag import DagBag

    sys.path.insert(0, str(REPO / folder))  # as Airflow does: DAG files import their neighbours
    try:
        bag = DagBag(str(REPO / folder))
    finally:
        sys.path.remove(str(REPO / folder))
    assert {} == bag.import_errors
    for dag in bag.dags.values():
        if dag.dag_id in INVALID_ON_PURPOSE:
            continue
        for task in dag.tasks:
            name = f"{dag.dag_id}.{task.task_id}"
            if isinstance(task, _DatabricksRunOperator):
                yield name, task, dag
            elif isinstance(getattr(task, "operator_class", None), type) and issubclass(
                task.operator_class, _DatabricksRunOperator
            ):
                yield from ((n, op, dag) for n, op in _expanded(name, task))


def _expanded(name: str, mapped: Any) -> Iterator[tuple[str, _DatabricksRunOperator]]:
    """One operator per literal a mapped task expands over, built from its partial arguments."""
    cls = mapped.operator_class
    partial = {k: v for k, v in mapped.partial_kwargs.items() if k in cls.template_fields}
    for argument, values in mapped.expand_input.value.items():
        for index, value in enumerate(values):
            yield f"{name}[{index}]", cls(task_id=mapped.task_id, **partial, **{argument: value})


def _context(dag: Any) -> dict[str, Any]:
    """What the DAGs' templates read, as a DAG run with an empty conf would give it."""
    return {
        "dag": dag,
        "params": {key: dag.params[key] for key in dag.params},
        "run_id": "manual__2026-01-01",
        "ds": "2026-01-01",
        "dag_run": SimpleNamespace(conf={"conn_id": "databricks_default"}),
        "ti": SimpleNamespace(map_index=0),
    }


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_databricks_task_of_the_dags_has_a_spec_the_workspace_accepts(folder: str) -> None:
    """validate_job() (the operator's check before any API call) passes for each Databricks task."""
    checked: dict[str, str] = {}
    for name, operator, dag in _operators(folder):
        try:
            operator.render_template_fields(_context(dag))  # Airflow renders before execute()
            operator.validate_job()
        except ValueError as exc:
            checked[name] = str(exc)
        else:
            checked[name] = "ok"
    assert checked, f"{folder} holds no Databricks task: the test would prove nothing"
    assert {name: "ok" for name in checked} == checked

"""The test-only pauses of the end-to-end DAGs (see tests/e2e/dags/e2e_databricks.py for the points).

A paused task writes ``<E2E_GATES_DIR>/<dag run id>/<point>.try<N>.reached`` holding its PID, then
waits, without any log line or supervisor call, until ``<point>.release`` appears or it is killed.
Not a DAG file: it defines no DAG, and the DAG files import it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

GATES_DIR = os.environ.get("E2E_GATES_DIR", "")
PAUSE_LIMIT_SECONDS = 300


def pause_if_asked(point: str, context: Any) -> None:
    """Stop at ``point`` if this DAG run's conf asks for it on this try (see the module docstring)."""
    ti = context["ti"]
    wanted = (context["dag_run"].conf or {}).get("pause", {}).get(point, [])
    if ti.try_number not in wanted or not GATES_DIR:
        return
    gate = Path(GATES_DIR) / ti.run_id
    gate.mkdir(parents=True, exist_ok=True)
    reached = gate / f"{point}.try{ti.try_number}.reached"
    reached.with_suffix(".tmp").write_text(str(os.getpid()))
    reached.with_suffix(".tmp").replace(reached)
    release = gate / f"{point}.release"
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

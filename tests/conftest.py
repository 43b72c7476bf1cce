"""Test-session setup shared by every test.

Airflow reads its configuration at import time, so the environment is pinned here, before any test
module (or our package's Airflow adapters) imports it: a throw-away AIRFLOW_HOME with a SQLite
database, no example DAGs, and unit-test mode.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_home = Path(tempfile.mkdtemp(prefix="resumable-triggers-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "tests" / "dags"))
# Real users' credentials must never leak into (or be used by) the tests.
for _name in [n for n in os.environ if n.startswith(("DATABRICKS_", "ARM_"))]:
    del os.environ[_name]

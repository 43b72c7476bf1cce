"""Test-session setup shared by every test.

Airflow reads its configuration at import time, so the environment is pinned here, before any test
module (or our package's Airflow adapters) imports it: a throw-away AIRFLOW_HOME with a SQLite
database, no example DAGs, and unit-test mode. ``dag.test()`` only runs DAGs from the dags folder, so
the session's dags folder holds copies of ``examples/dags`` and ``tests/dags``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_home = Path(tempfile.mkdtemp(prefix="resumable-triggers-airflow-"))
_dags = _home / "dags"
_dags.mkdir()
for _source in (REPO / "examples" / "dags", REPO / "tests" / "dags"):
    for _file in _source.glob("*.py"):
        shutil.copy(_file, _dags / _file.name)
os.environ["AIRFLOW_HOME"] = str(_home)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_dags)
sys.path.insert(0, str(_dags))  # as Airflow does for the dags folder: DAG files import their neighbours
# The example DAGs take their run length from here: short runs keep dag.test() of the examples fast.
os.environ["EXAMPLE_RUN_SECONDS"] = "1"
os.environ["DETACHED_COMMAND_ROOT"] = str(_home / "example-detached-jobs")
# Real users' credentials must never leak into (or be used by) the tests.
for _name in [n for n in os.environ if n.startswith(("DATABRICKS_", "ARM_"))]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A fresh Airflow metadata database for the session; yields the dags folder."""
    from airflow.utils import db

    db.resetdb()
    return _dags


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path):
    """All DAGs of the session's dags folder (examples and test DAGs), parsed once."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(airflow_db))
    assert {} == bag.import_errors
    return bag


@pytest.fixture(scope="session")
def _span_exporter():
    """Install an OpenTelemetry SDK provider exporting to memory, once: the global provider can be set
    only once per process, and Airflow (with ``[traces] otel_on`` off, as here) sets none."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert provider is trace.get_tracer_provider(), "another tracer provider was installed first"
    return exporter


@pytest.fixture
def span_exporter(_span_exporter):
    """The session's in-memory span exporter, emptied for this test."""
    _span_exporter.clear()
    return _span_exporter

"""The public surface: explicit ``__all__``s, a pinned trigger classpath, provider registration."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = [
    "resumable_triggers.resume",
    "resumable_triggers.databricks",
    "resumable_triggers.databricks.client",
    "resumable_triggers.testing",
    "resumable_triggers.testing.emulator",
    "resumable_triggers.testing.airflow",
    "resumable_triggers.testing.chaos",
    "resumable_triggers.testing.deployment",
]


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2), name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_every_name_resolves(name: str) -> None:
    """Each package re-exports a sorted ``__all__`` whose names all exist.

    Sorted as ruff's RUF022 keeps it: constants, then classes, then functions, each alphabetically."""
    module = importlib.import_module(name)
    assert sorted(module.__all__, key=_isort_key) == list(module.__all__)
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert [] == missing


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_class_and_function_is_in_all(name: str) -> None:
    """Nothing public is exported by accident or forgotten: our public objects are all listed.

    ``dir()``, not ``vars()``: the testing packages import their names lazily (PEP 562)."""
    module = importlib.import_module(name)
    public = {
        item
        for item, value in ((item, getattr(module, item)) for item in dir(module))
        if not item.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("resumable_triggers")
    }
    assert set() == public - set(module.__all__)


def test_trigger_classpath_is_pinned() -> None:
    """Airflow stores this classpath for every deferred task: it must never move."""
    from airflow.sdk.module_loading import import_string

    from resumable_triggers.databricks import DatabricksRunTrigger

    classpath, _ = DatabricksRunTrigger(external_id=1).serialize()
    assert "resumable_triggers.databricks.DatabricksRunTrigger" == classpath
    assert DatabricksRunTrigger is import_string(classpath)


def test_client_and_emulator_never_import_airflow() -> None:
    """The Databricks client and the emulator stay usable (and fast to import) without Airflow."""
    code = (
        "import sys, resumable_triggers.databricks.client, resumable_triggers.testing; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "[]" == out.strip()


def test_package_registers_as_an_airflow_provider_with_its_extra_link() -> None:
    """The apache_airflow_provider entry point makes the run-page link appear in Airflow's UI."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "resumable-triggers" in manager.providers
    assert "resumable_triggers.databricks.DatabricksRunLink" in manager.extra_links_class_names


def test_package_plugin_loads_once_without_an_import_error(tmp_path: Path) -> None:
    """Airflow loads the listener's plugin from our ``airflow.plugins`` entry point exactly once: a
    second copy of our metadata on ``sys.path`` (an editable install's ``src/*.egg-info``) made every
    component log "already registered" and list it as a plugin import error."""
    code = (
        "from airflow import plugins_manager as pm; plugins, errors = pm._get_plugins(); "
        "print([p.name for p in plugins if p.name == 'resumable_triggers'], "
        "[name for name in errors if 'resumable' in name or 'resumable' in errors[name]])"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    assert "['resumable_triggers'] []" == out.stdout.strip().splitlines()[-1]

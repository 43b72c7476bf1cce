"""The package's public surface: an honest ``__all__`` and no Airflow at import time."""

from __future__ import annotations

import subprocess
import sys

import resumable_triggers.databricks.client as client_package


def test_all_is_sorted_and_names_only_existing_public_objects() -> None:
    """``__all__`` is sorted, unique, resolvable, and lists every public name the package binds."""
    exported = client_package.__all__
    public = {
        name
        for name, value in vars(client_package).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith(client_package.__name__)
    }

    assert sorted(exported) == exported
    assert len(set(exported)) == len(exported)
    assert [] == [name for name in exported if not hasattr(client_package, name)]
    assert public == set(exported)


def test_importing_the_client_never_imports_airflow() -> None:
    """A fresh interpreter importing the client (and using it) has no ``airflow`` module loaded.

    The client runs in triggerers and plain scripts alike; importing Airflow would cost seconds and
    drag its configuration into code that has nothing to do with it.
    """
    code = (
        "import sys\n"
        "import resumable_triggers.databricks.client as c\n"
        "c.ClientSettings(); c.Run.from_api({'run_id': 1, 'state': {'life_cycle_state': 'RUNNING'}})\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert "[]" == result.stdout.strip()

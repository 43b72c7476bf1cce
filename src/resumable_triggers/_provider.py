"""Registers the package as an Airflow provider, so the UI shows our extra link on task instances."""

from __future__ import annotations

from typing import Any

from resumable_triggers import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "resumable-triggers",
        "name": "Resumable Triggers",
        "description": "Crash-safe, deferrable operators for long-running external jobs (Databricks).",
        "versions": [__version__],
        "extra-links": ["resumable_triggers.databricks.DatabricksRunLink"],
    }

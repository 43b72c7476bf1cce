"""Databricks: resumable, deferrable operators and their trigger, on an Airflow-free async client.

``resumable_triggers.databricks.client`` never imports Airflow. The Airflow adapters below are loaded
on first attribute access (PEP 562), so importing the client does not import Airflow either.

The trigger's classpath, ``resumable_triggers.databricks.DatabricksRunTrigger``, is stored in Airflow's
database for every deferred task: it is public API and never moves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resumable_triggers.databricks._connection import ConnectionConfigError
    from resumable_triggers.databricks._operators import (
        DatabricksRunLink,
        DatabricksSubmitRunOperator,
    )
    from resumable_triggers.databricks._provider_args import ProviderArgumentRejected
    from resumable_triggers.databricks._run_now import DatabricksRunNowOperator
    from resumable_triggers.databricks._spec import InvalidSpecError
    from resumable_triggers.databricks._task_operators import (
        DatabricksNotebookOperator,
        DatabricksTaskOperator,
        InsideDatabricksWorkflowError,
    )
    from resumable_triggers.databricks._trigger import DatabricksRunTrigger, RunEvent, TaskFailure

_LAZY = {
    "ConnectionConfigError": "resumable_triggers.databricks._connection",
    "DatabricksNotebookOperator": "resumable_triggers.databricks._task_operators",
    "DatabricksRunLink": "resumable_triggers.databricks._operators",
    "DatabricksRunNowOperator": "resumable_triggers.databricks._run_now",
    "DatabricksRunTrigger": "resumable_triggers.databricks._trigger",
    "DatabricksSubmitRunOperator": "resumable_triggers.databricks._operators",
    "DatabricksTaskOperator": "resumable_triggers.databricks._task_operators",
    "InsideDatabricksWorkflowError": "resumable_triggers.databricks._task_operators",
    "InvalidSpecError": "resumable_triggers.databricks._spec",
    "ProviderArgumentRejected": "resumable_triggers.databricks._provider_args",
    "RunEvent": "resumable_triggers.databricks._trigger",
    "TaskFailure": "resumable_triggers.databricks._trigger",
}

__all__ = [
    "ConnectionConfigError",
    "DatabricksNotebookOperator",
    "DatabricksRunLink",
    "DatabricksRunNowOperator",
    "DatabricksRunTrigger",
    "DatabricksSubmitRunOperator",
    "DatabricksTaskOperator",
    "InsideDatabricksWorkflowError",
    "InvalidSpecError",
    "ProviderArgumentRejected",
    "RunEvent",
    "TaskFailure",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

"""The real-Airflow harness under its old name: import from `resumable_triggers.testing.airflow` instead.

Kept so that tests written against ``resumable_triggers.testing.deployment`` keep working; every name
here is the same object as in ``resumable_triggers.testing.airflow``.
"""

from __future__ import annotations

from resumable_triggers.testing.airflow import (
    COMPONENTS,
    AirflowDeployment,
    AirflowRestClient,
    ApiError,
    ComponentExitedError,
    DeploymentError,
    DeploymentProcess,
    TaskProcesses,
    UnexpectedStateError,
    UnknownJobError,
    WaitTimeoutError,
)

__all__ = [
    "COMPONENTS",
    "AirflowDeployment",
    "AirflowRestClient",
    "ApiError",
    "ComponentExitedError",
    "DeploymentError",
    "DeploymentProcess",
    "TaskProcesses",
    "UnexpectedStateError",
    "UnknownJobError",
    "WaitTimeoutError",
]

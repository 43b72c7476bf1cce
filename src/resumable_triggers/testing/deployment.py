"""The real-Airflow harness under its old name: import from `resumable_triggers.testing.airflow` instead.

Kept so that tests written against ``resumable_triggers.testing.deployment`` keep working; every name
here is the same object as in ``resumable_triggers.testing.airflow``, and ``ApiError`` is
``AirflowApiError``.
"""

from __future__ import annotations

from resumable_triggers.testing.airflow import (
    COMPONENTS,
    AirflowApiError,
    AirflowDeployment,
    AirflowRestClient,
    ComponentExitedError,
    DeploymentError,
    DeploymentProcess,
    TaskProcesses,
    UnexpectedStateError,
    UnknownJobError,
    WaitTimeoutError,
)

# Its name before the emulator's and the client's errors of the same name made it ambiguous.
ApiError = AirflowApiError

__all__ = [
    "COMPONENTS",
    "AirflowApiError",
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

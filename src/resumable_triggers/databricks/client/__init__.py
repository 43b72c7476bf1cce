"""An asyncio client for the Databricks Jobs API 2.2, built for thousands of concurrent pollers.

It never imports Airflow. Triggers lease a shared client (one session and one request budget per
workspace per event loop); a worker opens one per call, through the operator's one bridge into async
code (``resumable_triggers.resume._bridge``); auth is delegated to databricks-sdk::

    provider = SdkHeaderProvider(lambda: Config(host=host, token=token), identity="conn:databricks_default")
    async with shared_client(host, provider) as client:
        run = await client.get_run(run_id)
        async with watch_run(client, run_id, interval_seconds=30) as updates:
            async for run in updates:  # one runs/list page answers 25 watched runs
                ...
"""

from __future__ import annotations

from resumable_triggers.databricks.client._auth import HeaderProvider, SdkHeaderProvider
from resumable_triggers.databricks.client._budget import RequestBudget
from resumable_triggers.databricks.client._client import DatabricksClient
from resumable_triggers.databricks.client._errors import (
    ApiError,
    AuthError,
    CredentialsError,
    DatabricksError,
    JobLookupError,
    RetriesExhausted,
    RunNotFound,
    TlsVerificationError,
    TransportError,
)
from resumable_triggers.databricks.client._models import (
    LifeCycleState,
    RepairAttempt,
    ResultState,
    Run,
    RunOutput,
    RunsPage,
    RunState,
    RunStatus,
    RunStatusState,
    RunType,
    TaskError,
    TaskRun,
    TerminationDetails,
)
from resumable_triggers.databricks.client._retry import is_transient
from resumable_triggers.databricks.client._settings import ClientSettings
from resumable_triggers.databricks.client._shared import shared_client
from resumable_triggers.databricks.client._watch import RunWatch
from resumable_triggers.databricks.client._watch_plan import WatcherSettings, WatcherStats
from resumable_triggers.databricks.client._watcher import RunWatcher, watch_run

__all__ = [
    "ApiError",
    "AuthError",
    "ClientSettings",
    "CredentialsError",
    "DatabricksClient",
    "DatabricksError",
    "HeaderProvider",
    "JobLookupError",
    "LifeCycleState",
    "RepairAttempt",
    "RequestBudget",
    "ResultState",
    "RetriesExhausted",
    "Run",
    "RunNotFound",
    "RunOutput",
    "RunState",
    "RunStatus",
    "RunStatusState",
    "RunType",
    "RunWatch",
    "RunWatcher",
    "RunsPage",
    "SdkHeaderProvider",
    "TaskError",
    "TaskRun",
    "TerminationDetails",
    "TlsVerificationError",
    "TransportError",
    "WatcherSettings",
    "WatcherStats",
    "is_transient",
    "shared_client",
    "watch_run",
]

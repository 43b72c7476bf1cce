"""A real Airflow 3.3 deployment in subprocesses, for end-to-end tests and ``resumable-triggers demo``.

::

    with AirflowDeployment(dags_folder=Path("dags"), connections={"databricks_default": {...}}) as af:
        af.rest.wait_for_dag("my_dag")
        run_id = af.rest.trigger_dag_run("my_dag")
        af.rest.wait_for_task_state("my_dag", run_id, "submit", states={"deferred"})
        af.faults.kill("triggerer", signal.SIGKILL)
        af.restart("triggerer")
        af.rest.wait_for_dag_run_state("my_dag", run_id, states={"success"})

A deployment holds its parts: ``af.rest`` (`AirflowRestClient`: runs, task instances and user
actions, through the public REST API), ``af.faults`` (kill, pause, resume, and finding the process to
hit) and ``af.logs`` (each instance's output); it starts, restarts and stops the processes itself.

By default a deployment has its own temporary ``AIRFLOW_HOME``, SQLite database, LocalExecutor and
free ports on 127.0.0.1. A production-like topology is one call away::

    AirflowDeployment(dags_folder=..., database="postgres", executor="celery",
                      schedulers=2, triggerers=2, workers=1)

which also starts a PostgreSQL and a Redis server of its own (temporary directories, loopback
ports), so that faults can hit them too: ``restart("postgres")``, ``faults.kill("redis", SIGKILL)``.

Every process the deployment starts is an *instance* (`_topology`): ``"api-server"``,
``"scheduler[1]"``, ``"triggerer[0]"`` (or ``"triggerer"``: a bare name is instance 0),
``"celery-worker[0]"``, ``"postgres"``, ``"redis"``. Each runs in its own session, its output goes to
``<home>/component-logs/<instance>.log``, and ``restart`` and ``faults.kill``, ``pause`` and
``resume`` take its name. ``faults.component_of_job(job_id)`` names the instance that registered an
Airflow job, e.g. the triggerer holding a trigger. ``stop()`` resumes anything paused, then kills
every process the deployment ever started, orphans included, by PID. The harness knows nothing
about Databricks: callers pass connections and environment.

Errors::

    DeploymentError
    ├── ComponentExitedError   a component died while the deployment waited for it
    ├── AirflowApiError        the REST API answered with an error status, or not at all
    ├── UnexpectedStateError   a task or run ended in a state other than the awaited ones
    ├── UnknownJobError        (also a LookupError) no instance of ours registered that Airflow job
    └── WaitTimeoutError       (also a TimeoutError) a wait gave up; carries the last value seen
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resumable_triggers.testing import _lazy

if TYPE_CHECKING:
    from resumable_triggers.testing.airflow._deployment import (
        COMPONENTS,
        PRODUCTION_TOPOLOGY,
        AirflowDeployment,
    )
    from resumable_triggers.testing.airflow._errors import (
        AirflowApiError,
        ComponentExitedError,
        DeploymentError,
        UnexpectedStateError,
        UnknownJobError,
        WaitTimeoutError,
    )
    from resumable_triggers.testing.airflow._processes import DeploymentProcess, TaskProcesses
    from resumable_triggers.testing.airflow._rest import AirflowRestClient

__all__ = [
    "COMPONENTS",
    "PRODUCTION_TOPOLOGY",
    "AirflowApiError",
    "AirflowDeployment",
    "AirflowRestClient",
    "ComponentExitedError",
    "DeploymentError",
    "DeploymentProcess",
    "TaskProcesses",
    "UnexpectedStateError",
    "UnknownJobError",
    "WaitTimeoutError",
]

# Lazy (PEP 562): every Airflow process of a deployment imports `_hostname` below this package, and
# must not pay for importing the harness (psutil, subprocess management) to learn its own name.
__getattr__, __dir__ = _lazy.lazy_exports(
    globals(),
    {name: "._deployment" for name in ("COMPONENTS", "PRODUCTION_TOPOLOGY", "AirflowDeployment")}
    | {name: "._processes" for name in ("DeploymentProcess", "TaskProcesses")}
    | {"AirflowRestClient": "._rest"}
    | {name: "._errors" for name in __all__ if name.endswith("Error")},
)

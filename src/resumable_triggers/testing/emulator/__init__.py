"""A Databricks Jobs API emulator, and pytest fixtures, for testing code that drives Databricks jobs.

It serves the Jobs API 2.1 and 2.2 (runs/submit, runs/get, runs/list, runs/cancel, runs/cancel-all,
runs/get-output, runs/repair, runs/delete, run-now, jobs/create|get|list|reset|update|delete) plus the
``.well-known``/OIDC routes, so databricks-sdk (PAT or OAuth M2M) and the Airflow provider's
``DatabricksHook`` work against it unchanged. Runs move PENDING -> RUNNING -> TERMINATING -> TERMINATED
on a clock (real or ``ManualClock``), computed lazily on read.

Quick start::

    emu = Emulator(run_seconds=2.0)
    with emulator_in_thread(emu) as server:
        client = WorkspaceClient(host=server.url, token=emu.token)

Scripting outcomes, most specific first:

1. ``emu.script_run(run_id, result_state=..., duration_seconds=..., error=...)`` or
   ``emu.finish_run(run_id, ...)`` for one run;
2. ``emulator.*`` keys in the submitted spec, so a DAG can declare what its run does. In any task's
   ``notebook_task.base_parameters`` (dict), ``*_task.named_parameters`` (dict) or
   ``*_task.parameters`` (list of ``"key=value"`` strings); for run-now/repair also in
   ``notebook_params``/``job_parameters``/``python_named_params`` and ``python_params``/``jar_params``:

   - ``emulator.duration_seconds``: seconds from submission to TERMINATED (the run's longest task);
   - ``emulator.result_state``: ``SUCCESS``, ``FAILED``, ``TIMEDOUT``, ``CANCELED``, any other result
     state, or ``INTERNAL_ERROR``/``SKIPPED`` (life-cycle outcomes);
   - ``emulator.error``: the task's ``error`` in ``runs/get-output``;
   - ``emulator.output``: the notebook's ``notebook_output.result``;
   - ``emulator.fail_attempts``: integer >= 0; the task's first N attempts end FAILED (with
     ``emulator.error``, else a default message), later ones with ``emulator.result_state``; task
     retries and repairs both count (by ``attempt_number``), so ``"1"`` fails once, then succeeds
     when retried or repaired;

   e.g. ``"base_parameters": {"emulator.duration_seconds": "20", "emulator.result_state": "FAILED",
   "emulator.error": "boom"}``;
3. ``emu.set_default_outcome(...)`` for every run created afterwards;
4. otherwise SUCCESS after ``run_seconds``.

``timeout_seconds`` in the spec makes a longer run end TIMEDOUT; ``runs/cancel`` makes it
TERMINATING at once and TERMINATED/CANCELED (USER_CANCELED) ``cancel_seconds`` later.

Task retries (``_retries``): a task's ``max_retries`` (-1 counts as 100), ``min_retry_interval_millis``
and ``retry_on_timeout`` make a FAILED/INTERNAL_ERROR (or, with ``retry_on_timeout``, TIMEDOUT past the
task's own ``timeout_seconds``) attempt followed by another after the interval, the run RUNNING and the
next attempt WAITING_FOR_RETRY meanwhile; each attempt is its own ``tasks[]`` entry (task ``run_id``,
``attempt_number``). A repair starts the next attempt, which retries by the same rules.

``jobs/update`` replaces top-level settings and merges ``tasks``/``job_clusters`` by key;
``fields_to_remove`` drops top-level fields or ``tasks/<key>``/``job_clusters/<key>`` (``_jobs_api``).

Credentials accepted (all configurable on ``Emulator``): the PAT ``token`` (default
``dapi-emulator-token``); OAuth M2M client ``emulator-client-id``/``emulator-client-secret``; HTTP
Basic ``emulator@example.com``/``emulator-password``.

``run_page_url`` (``{url}/?o={workspace}#job/{job}/run/{run}``, the real service's shape) opens the
emulator's run page: the run's state, its tasks with their states and errors, a timeline, the repair
history, and the workspace's runs list. It is emulator-only: no login (like the control API), never
counted as API traffic, and it fetches nothing from the internet (see ``_page``).

Control operations (scripting, faults, rate limits, tokens, counters, the request log) are the
``ControlSurface``: the same on ``Emulator`` in-process and on ``EmulatorControl`` (an emulator in
another process, e.g. ``EmulatorProcess().control``).

pytest fixtures (the ``resumable_triggers`` plugin): ``databricks_emulator_factory(**settings)``
serves an ``Emulator(**settings)`` and returns an ``EmulatorHandle``; ``databricks_emulator`` is one
with the defaults, and ``databricks_emulator_env`` also points the environment at it.

Provider connection (what the ``databricks_emulator_env`` fixture sets)::

    AIRFLOW_CONN_DATABRICKS_DEFAULT='{"conn_type": "databricks", "host": "127.0.0.1", "port": PORT,
                                      "schema": "http", "password": "dapi-emulator-token"}'

The URL is ``{schema or "https"}://{host}:{port}`` for the provider's hook and for our operators alike:
``host`` is the bare host name, ``schema`` carries ``http``, ``port`` the port
(``airflow_connection(url, token)`` builds it).
"""

from __future__ import annotations

from ._connection import airflow_connection
from ._control import EmulatorControl
from ._emulator import Emulator
from ._errors import UnknownRunError
from ._faults import Counters, RequestRecord
from ._handle import EmulatorFactory, EmulatorHandle
from ._process import EmulatorProcess
from ._server import EmulatorServer, emulator_in_thread
from ._surface import ControlSurface

__all__ = [
    "ControlSurface",
    "Counters",
    "Emulator",
    "EmulatorControl",
    "EmulatorFactory",
    "EmulatorHandle",
    "EmulatorProcess",
    "EmulatorServer",
    "RequestRecord",
    "UnknownRunError",
    "airflow_connection",
    "emulator_in_thread",
]

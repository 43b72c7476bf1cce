"""The client under production faults on a real Airflow: a rotated token, an unreachable workspace,
an error that will not heal.

Each test creates its own Databricks connection in Airflow's metadata database through the REST API
(``POST /api/v2/connections``), so that rotating it is seen by the running triggerer, whose supervisor
serves every lookup from the database through the Execution API (``AIRFLOW_CONN_*`` variables are
fixed at start and would shadow it). DAGs: ``tests/e2e/dags/e2e_client_faults.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from e2e_testkit import DagRun, DatabricksE2E

from resumable_triggers.resume._signals import TIMEOUT_GRACE_SECONDS
from resumable_triggers.testing.airflow import AirflowApiError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

_ids = itertools.count(1)


@contextlib.contextmanager
def connection(dbx: DatabricksE2E, *, host: str, port: int | None, token: str) -> Iterator[str]:
    """A ``databricks`` connection in the metadata DB (never in the environment); deleted afterwards."""
    conn_id = f"e2e_client_{os.getpid()}_{next(_ids)}"
    body = {"connection_id": conn_id, "conn_type": "databricks", "host": host, "port": port}
    dbx.airflow.rest.api("POST", "/connections", json_body={**body, "schema": "http", "password": token})
    try:
        yield conn_id
    finally:
        with contextlib.suppress(AirflowApiError):
            dbx.airflow.rest.api("DELETE", f"/connections/{conn_id}")


def emulator_address(dbx: DatabricksE2E) -> tuple[str, int]:
    parts = urlsplit(dbx.emulator.url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def seconds_executing(ti: dict[str, Any], log: str) -> float:
    """From the operator's first line in ``execute`` (its resume decision) to the task's end: what an
    ``execution_timeout`` bounds. Airflow's own start-up (loading bundles, parsing the DAG file: 8 s
    on an idle 2-core machine, 44 s seen on a loaded one) comes before it and is not the library's."""
    line = next(line for line in log.splitlines() if "resume decision:" in line)
    started = dt.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00"))
    return (end - started).total_seconds()


def test_token_rotated_in_the_connection_mid_deferral_is_picked_up_by_the_running_triggerer(
    dbx: DatabricksE2E,
) -> None:
    """While the task is deferred, the connection's token is rotated (PATCH through the REST API) and
    the old one revoked at the workspace: the triggerer's next poll is rejected once, re-reads the
    connection, and the same try succeeds on the same run, with no triggerer restart."""
    host, port = emulator_address(dbx)
    rotated = f"dapi-rotated-{os.getpid()}"
    with connection(dbx, host=host, port=port, token=dbx.emulator.token) as conn_id:
        dag_run = dbx.start("e2e_dbx_conn", conn_id=conn_id)
        dag_run.wait_for_deferred_and_watched()
        triggerer = dbx.airflow.pids()["triggerer"]
        [run] = dag_run.runs()

        dbx.control.add_token(rotated)
        patch = {"connection_id": conn_id, "conn_type": "databricks", "password": rotated}
        dbx.airflow.rest.api(
            "PATCH", f"/connections/{conn_id}", json_body=patch, params={"update_mask": "password"}
        )
        dbx.control.revoke_token(dbx.emulator.token)
        try:
            rejected = dbx.airflow.wait_for(
                "the triggerer to meet the revoked token",
                lambda: dbx.control.counters().responses_by_status.get(403) or None,
                timeout_seconds=60,
            )
            polls = dbx.requests()
            dbx.wait_for_requests(more_than=polls)  # it polls on, with the new token
            dag_run.finish_run(run["run_id"])
            dag_run.wait_for_state("success")
        finally:
            dbx.control.add_token(dbx.emulator.token)  # databricks_default uses it: later tests too

    outcome = dag_run.outcome()
    assert ("success", 1, ["SUCCESS"], 1, []) == outcome.summary()
    assert (run["run_id"], triggerer, True) == (
        outcome.xcom_run_id,
        dbx.airflow.pids()["triggerer"],  # the same triggerer process: no restart
        rejected >= 1,
    )


@contextlib.contextmanager
def silent_workspace() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers a byte; closed afterwards."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def wait_failed(dag_run: DagRun) -> dict[str, Any]:
    return dag_run.wait_for_state("failed", "up_for_retry", timeout_seconds=150)


def test_unreachable_workspace_fails_the_task_at_its_execution_timeout_naming_the_host(
    dbx: DatabricksE2E,
) -> None:
    """The connection's host accepts connections and never answers: the task fails at its 20 s
    execution_timeout (it used to hang ~300 s on databricks-sdk's host discovery thread), and its
    log names the host it was waiting for."""
    with silent_workspace() as port, connection(dbx, host="127.0.0.1", port=port, token="t") as conn_id:
        dag_run = dbx.start("e2e_dbx_conn_timeout", conn_id=conn_id)
        ti = wait_failed(dag_run)
        log = dag_run.logs(1)
        took = seconds_executing(ti, log)
    print(f"unreachable workspace, execution_timeout 20 s: task executed {took:.1f} s")
    assert ("failed", True, True) == (ti["state"], f"127.0.0.1:{port}" in log, "execution_timeout" in log)
    # 20 s, plus the grace a submit in flight gets to answer (TIMEOUT_GRACE_SECONDS), plus slack.
    assert took < 20 + TIMEOUT_GRACE_SECONDS + 5, (
        f"executed {took:.1f} s: its 20 s execution_timeout did not stop it"
    )


def test_unreachable_workspace_without_timeout_fails_within_the_connect_budget_naming_the_host(
    dbx: DatabricksE2E,
) -> None:
    """No execution_timeout: the try fails after the connect budget (about 40 s, documented), its
    error naming the host and the budget, instead of retrying for minutes."""
    with silent_workspace() as port, connection(dbx, host="127.0.0.1", port=port, token="t") as conn_id:
        dag_run = dbx.start("e2e_dbx_conn", conn_id=conn_id)
        ti = dag_run.wait_for_try(2, "running", "failed", "up_for_retry")
        first = dag_run.airflow.wait_for(
            "try 1 to end",
            lambda: next(
                (
                    t
                    for t in dag_run.airflow.rest.task_tries(dag_run.dag_id, dag_run.run_id, "etl")
                    if t["try_number"] == 1 and t.get("end_date")
                ),
                None,
            ),
            timeout_seconds=30,
        )
        log = dag_run.logs(1)
        took = seconds_executing(first, log)
        dbx.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
    print(f"unreachable workspace, no timeout: try 1 executed {took:.1f} s")
    assert (2, True, True) == (ti["try_number"], f"127.0.0.1:{port}" in log, "connect_budget_seconds" in log)
    assert took < 40 + 20, f"try 1 executed {took:.1f} s: longer than the connect budget allows"


def test_user_marks_a_task_stuck_connecting_failed_and_it_stops_at_once(dbx: DatabricksE2E) -> None:
    """A task stuck reaching a silent workspace is marked failed by a user: its process is gone within
    seconds, not when databricks-sdk's host discovery gives up."""
    with silent_workspace() as port, connection(dbx, host="127.0.0.1", port=port, token="t") as conn_id:
        dag_run = dbx.start("e2e_dbx_conn", conn_id=conn_id)
        dag_run.wait_for_state("running")
        processes = dag_run.processes()
        time.sleep(3)  # let it get stuck inside the SDK's discovery and the first request
        marked = time.monotonic()
        dbx.airflow.rest.mark_task_failed(dag_run.dag_id, dag_run.run_id, "etl")
        dbx.airflow.wait_for(
            "the task process to exit",
            lambda: not _alive(processes.task_pid) or None,
            timeout_seconds=60,
        )
        stopped = time.monotonic() - marked
    print(f"mark-failed of a task stuck connecting: process gone after {stopped:.1f} s")
    assert ("failed", True) == (dag_run.ti()["state"], stopped < 15)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_permanent_error_while_deferred_fails_the_try_at_once_and_the_retry_reconnects(
    dbx: DatabricksE2E,
) -> None:
    """The connection's token is revoked at the workspace (and not rotated) while the task is
    deferred: the trigger's poll gets 403, re-reads the connection, gets 403 again, and the try fails
    at once with a message naming the status and endpoint, not after the 30-minute error budget.
    Once the token is valid again, the retry reconnects to the same run (no second submit)."""
    host, port = emulator_address(dbx)
    with connection(dbx, host=host, port=port, token=dbx.emulator.token) as conn_id:
        dag_run = dbx.start("e2e_dbx_conn_slow_retry", conn_id=conn_id)
        dag_run.wait_for_deferred_and_watched()
        [run] = dag_run.runs()
        dbx.control.revoke_token(dbx.emulator.token)
        struck = time.monotonic()
        try:
            dag_run.wait_for_state("up_for_retry", "failed")
            failed_after = time.monotonic() - struck
        finally:
            dbx.control.add_token(dbx.emulator.token)
        dag_run.wait_for_try(2, "deferred")
        dag_run.wait_for_deferred_and_watched()
        dag_run.finish_run(run["run_id"])
        dag_run.wait_for_state("success")
        log = dag_run.logs(1)

    print(f"permanent 403 while deferred: try 1 failed after {failed_after:.1f} s")
    outcome = dag_run.outcome()
    assert ("success", 2, ["SUCCESS"], 1, []) == outcome.summary()
    assert (True, True, run["run_id"]) == ("HTTP 403" in log, "permanent error" in log, outcome.xcom_run_id)
    assert failed_after < 60, f"try 1 failed {failed_after:.0f} s after the 403s: the error was waited out"

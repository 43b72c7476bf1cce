"""Driving an Airflow 3.3 deployment over its public REST API (``/api/v2``), synchronously.

Runs and user actions go through REST rather than the ``airflow`` CLI, which costs ~3 s of start-up
per call. With ``[core] simple_auth_manager_all_admins`` the API needs no token: its middleware
makes every request an admin's.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from resumable_triggers.testing.airflow._errors import AirflowApiError, UnexpectedStateError, WaitTimeoutError

_T = TypeVar("_T")

_FINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
_FINAL_RUN_STATES = frozenset({"success", "failed"})
_POLL_SECONDS = 0.2


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _ti_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}"


class AirflowRestClient:
    """Runs, task instances and user actions of the Airflow at ``base_url`` (``http://host:port``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout_seconds: float = 30.0,
    ) -> Any:
        """Call ``/api/v2`` + ``path``; return the decoded JSON answer, or raise ``AirflowApiError``."""
        url = f"{self.base_url}/api/v2{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = json.dumps(json_body).encode() if json_body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise AirflowApiError(method, path, exc.code, exc.read().decode(errors="replace")[:2000]) from exc
        except OSError as exc:  # URLError, refused connections and timeouts are all OSErrors
            raise AirflowApiError(method, path, None, str(exc)) from exc
        return json.loads(body) if body else None

    def wait_for(self, what: str, probe: Callable[[], _T | None], *, timeout_seconds: float = 60.0) -> _T:
        """Call ``probe`` every 0.2 s until it returns something other than None, and return that.

        ``what`` names the awaited condition in the ``WaitTimeoutError``. REST outages (no answer, or
        HTTP 5xx, e.g. while the API server restarts) count as "not yet"; other API errors propagate.
        """
        deadline = time.monotonic() + timeout_seconds
        last: object = None
        while True:
            try:
                value = probe()
                if value is not None:
                    return value
            except AirflowApiError as exc:
                if exc.status is not None and exc.status < 500:
                    raise
                last = exc
            if time.monotonic() > deadline:
                raise WaitTimeoutError(what, timeout_seconds, last)
            time.sleep(_POLL_SECONDS)

    # -- DAGs and runs ------------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, *, timeout_seconds: float = 60.0) -> dict[str, Any]:
        """Wait until the DAG processor registered ``dag_id``; unpause it; return the DAG's record."""

        def probe() -> dict[str, Any] | None:
            try:
                dag: dict[str, Any] = self.api("GET", f"/dags/{_quote(dag_id)}")
            except AirflowApiError as exc:
                if exc.status == 404:
                    return None
                raise
            if dag.get("is_paused"):
                dag = self.api("PATCH", f"/dags/{_quote(dag_id)}", json_body={"is_paused": False})
            return dag

        try:
            return self.wait_for(f"DAG {dag_id} to be parsed", probe, timeout_seconds=timeout_seconds)
        except WaitTimeoutError as exc:
            # The usual cause is a DAG file that does not import: say which, and why.
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            raise WaitTimeoutError(exc.what, timeout_seconds, {"import_errors": errors}) from exc

    def trigger_dag_run(
        self,
        dag_id: str,
        run_id: str | None = None,
        conf: Mapping[str, Any] | None = None,
        *,
        logical_date: dt.datetime | None = None,
    ) -> str:
        """Start a manual run now; return its run id (Airflow makes one if None).

        Without ``logical_date`` the run has none, so templates such as ``{{ ds }}`` are undefined in
        it; pass one (timezone-aware) for DAGs that use them, as a scheduled run would have.
        """
        when = None if logical_date is None else logical_date.isoformat()
        body: dict[str, Any] = {"logical_date": when, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        answer = self.api("POST", f"/dags/{_quote(dag_id)}/dagRuns", json_body=body)
        return str(answer["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run as REST shows it (``state``, ``conf``...)."""
        result: dict[str, Any] = self.api("GET", f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}")
        return result

    def wait_for_dag_run_state(
        self, dag_id: str, run_id: str, *, states: Collection[str], timeout_seconds: float = 60.0
    ) -> dict[str, Any]:
        """Wait until the DAG run is in one of ``states``; raise early on an unwanted final state."""
        return self._wait_for_state(
            f"DAG run {dag_id}/{run_id} to be {sorted(states)}",
            lambda: self.dag_run(dag_id, run_id),
            frozenset(states),
            _FINAL_RUN_STATES,
            timeout_seconds,
        )

    def fail_active_dag_runs(self) -> list[tuple[str, str]]:
        """Mark every queued or running DAG run failed; return their ``(dag_id, run_id)``.

        Their running tasks are then stopped (SIGTERM, SIGKILL ~5 s later), deferred ones lose their
        trigger. Between tests that share a deployment, this keeps leftovers from holding worker slots.
        """
        answer = self.api("GET", "/dags/~/dagRuns", params={"state": ["queued", "running"], "limit": 100})
        failed = []
        for run in answer["dag_runs"]:
            path = f"/dags/{_quote(run['dag_id'])}/dagRuns/{_quote(run['dag_run_id'])}"
            self.api("PATCH", path, json_body={"state": "failed"})
            failed.append((run["dag_id"], run["dag_run_id"]))
        return failed

    # -- task instances -----------------------------------------------------------------------------

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The current try as REST shows it: ``state``, ``try_number``, ``id``, the task ``pid``..."""
        result: dict[str, Any] = self.api("GET", _ti_path(dag_id, run_id, task_id))
        return result

    def task_tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of the task instance, oldest first, each with its ``state`` and task ``pid``."""
        answer = self.api("GET", _ti_path(dag_id, run_id, task_id) + "/tries")
        return sorted(answer["task_instances"], key=lambda t: t["try_number"])

    def task_logs(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        """The log of one try (default: the current one) as text, its trigger's output included."""
        if try_number is None:
            try_number = int(self.task_instance(dag_id, run_id, task_id)["try_number"])
        path = f"{_ti_path(dag_id, run_id, task_id)}/logs/{try_number}"
        answer = self.api("GET", path, params={"full_content": "true"})
        return "\n".join(_log_line(entry) for entry in answer.get("content", []))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value a task pushed under ``key``, as the REST API decodes it."""
        path = f"{_ti_path(dag_id, run_id, task_id)}/xcomEntries/{_quote(key)}"
        return self.api("GET", path)["value"]

    def task_state(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        """The value a task keeps in ``task_state_store`` under ``key``, or None if it has none."""
        path = f"{_ti_path(dag_id, run_id, task_id)}/state-store/{_quote(key)}"
        try:
            return self.api("GET", path)["value"]
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    def current_ti_ids(
        self, dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None
    ) -> set[str]:
        """Ids of the current tries of the matching task instances (each try gets a new id)."""
        body: dict[str, Any] = {"page_limit": 100}
        if dag_id is not None:
            body["dag_ids"] = [dag_id]
        if run_id is not None:
            body["dag_run_ids"] = [run_id]
        if task_id is not None:
            body["task_ids"] = [task_id]
        answer = self.api("POST", "/dags/~/dagRuns/~/taskInstances/list", json_body=body)
        return {ti["id"] for ti in answer["task_instances"]}

    def mark_task_failed(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Mark the task instance failed, as a user in the UI would (a running try is then killed)."""
        self.api("PATCH", _ti_path(dag_id, run_id, task_id), json_body={"new_state": "failed"})

    def mark_task_success(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Mark the task instance successful, as a user in the UI would."""
        self.api("PATCH", _ti_path(dag_id, run_id, task_id), json_body={"new_state": "success"})

    def clear_task(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear the task instance whatever its state, as a user in the UI would: a new try follows."""
        self.api(
            "POST",
            f"/dags/{_quote(dag_id)}/clearTaskInstances",
            json_body={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        *,
        states: Collection[str],
        timeout_seconds: float = 60.0,
    ) -> dict[str, Any]:
        """Wait until the task instance is in one of ``states``; return its record.

        Raises ``UnexpectedStateError`` as soon as it reaches a final state that is not wanted. Polls
        every 0.2 s, so a state held for less (``up_for_retry`` without retry delay) can be missed.
        """
        return self._wait_for_state(
            f"{dag_id}/{run_id}/{task_id} to be {sorted(states)}",
            lambda: self.task_instance(dag_id, run_id, task_id),
            frozenset(states),
            _FINAL_TASK_STATES,
            timeout_seconds,
        )

    def _wait_for_state(
        self,
        what: str,
        fetch: Callable[[], dict[str, Any]],
        wanted: frozenset[str],
        final: frozenset[str],
        timeout_seconds: float,
    ) -> dict[str, Any]:
        seen: list[str | None] = []

        def probe() -> dict[str, Any] | None:
            record = fetch()
            state = record.get("state")
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in wanted:
                return record
            if state in final:
                raise UnexpectedStateError(what, str(state), seen)
            return None

        try:
            return self.wait_for(what, probe, timeout_seconds=timeout_seconds)
        except WaitTimeoutError as exc:
            raise WaitTimeoutError(what, timeout_seconds, {"states seen in order": seen}) from exc


def _log_line(entry: Any) -> str:
    """One structured log record of the REST API as a line of text."""
    if not isinstance(entry, dict):
        return str(entry)
    extras = {k: v for k, v in entry.items() if k not in ("timestamp", "level", "event", "logger")}
    fields = " ".join(f"{k}={v}" for k, v in extras.items())
    parts = [entry.get("timestamp"), entry.get("level"), entry.get("event"), fields]
    return " ".join(str(p) for p in parts if p)

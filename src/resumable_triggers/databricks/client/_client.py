"""The asyncio Databricks Jobs API 2.2 client: one implementation per endpoint (``_transport`` sends them)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

from resumable_triggers._clock import Clock, Sleep
from resumable_triggers.databricks.client._auth import HeaderProvider
from resumable_triggers.databricks.client._budget import RequestBudget
from resumable_triggers.databricks.client._errors import ApiError, JobLookupError
from resumable_triggers.databricks.client._http import new_session, normalise_host
from resumable_triggers.databricks.client._models import Run, RunOutput, RunsPage, RunType, TaskError, TaskRun
from resumable_triggers.databricks.client._settings import ClientSettings
from resumable_triggers.databricks.client._transport import Transport

__all__ = ["DatabricksClient"]

# A malformed server could hand out page tokens forever; no real run has 1000 pages of 100 tasks.
_MAX_PAGES = 1000
_MAX_IDEMPOTENCY_TOKEN_CHARS = 64


class DatabricksClient:
    """Async client for one workspace (``host``) and one identity (``headers``).

    Use as ``async with DatabricksClient(...) as client``; triggers should use ``shared_client`` so
    they share one session and one request budget per workspace. ``session`` lets a caller lend an
    existing ``aiohttp.ClientSession`` (then not closed here); ``budget`` shares a ``RequestBudget``
    across clients of one workspace. ``clock``, ``sleep`` and ``rng`` are seams for tests.
    """

    def __init__(
        self,
        host: str,
        headers: HeaderProvider,
        *,
        settings: ClientSettings | None = None,
        session: aiohttp.ClientSession | None = None,
        budget: RequestBudget | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.host = normalise_host(host)
        self.settings = settings or ClientSettings()
        self._headers = headers
        self._session = session
        self._owns_session = session is None
        self._budget = budget or RequestBudget(
            requests_per_second=self.settings.requests_per_second,
            burst=self.settings.burst,
            clock=clock,
            sleep=sleep,
        )
        self._clock = clock
        self._sleep = sleep
        self._transport = Transport(
            self.host,
            headers,
            settings=self.settings,
            budget=self._budget,
            clock=clock,
            sleep=sleep,
            rng=rng or random.Random(),
        )

    @property
    def identity(self) -> str:
        return self._headers.identity

    @property
    def budget(self) -> RequestBudget:
        """The request budget this client draws from (shared per workspace by ``shared_client``)."""
        return self._budget

    @property
    def clock(self) -> Clock:
        """The monotonic clock retries, budgets and watchers of this client read."""
        return self._clock

    @property
    def sleep(self) -> Sleep:
        """The sleep retries, budgets and watchers of this client wait with."""
        return self._sleep

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session requests go through (None before ``__aenter__`` when the client owns it)."""
        return self._session

    def __repr__(self) -> str:
        return f"DatabricksClient(host={self.host!r}, identity={self.identity!r})"

    async def __aenter__(self) -> DatabricksClient:
        if self._session is None:
            self._session = new_session(self.settings)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client created it. Idempotent."""
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    # ---- endpoints -------------------------------------------------------------------------------

    async def submit_run(self, spec: Mapping[str, Any], *, idempotency_token: str | None) -> int:
        """``runs/submit`` a one-time run; returns its run id.

        ``idempotency_token`` (<= 64 chars) is required as a keyword on purpose: with a token a lost
        answer is retried safely (Databricks launches at most one run per token, and returns the same
        run id even after it finished); with None a lost answer raises instead of risking a duplicate.
        """
        body = dict(spec)
        idempotent = _apply_idempotency_token(body, idempotency_token)
        payload = await self._call("POST", "jobs/runs/submit", body=body, idempotent=idempotent)
        return int(payload["run_id"])

    async def run_now(
        self,
        job_id: int,
        *,
        idempotency_token: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> int:
        """``run-now`` an existing job; returns the new run id.

        ``parameters`` are the request's other fields, as the API names them: ``{"job_parameters":
        {...}}``, or legacy ``notebook_params``/``python_params``/``jar_params``..., ``queue`` etc.
        They may not set ``job_id`` or ``idempotency_token`` (pass those as arguments).
        """
        body: dict[str, Any] = dict(parameters or {})
        clashes = sorted({"job_id", "idempotency_token"} & body.keys())
        if clashes:
            raise ValueError(f"run_now: pass {' and '.join(clashes)} as arguments, not inside parameters")
        body["job_id"] = int(job_id)
        idempotent = _apply_idempotency_token(body, idempotency_token)
        payload = await self._call("POST", "jobs/run-now", body=body, idempotent=idempotent)
        return int(payload["run_id"])

    async def find_job_id(self, job_name: str) -> int:
        """The id of the one job named exactly ``job_name``; JobLookupError if none or several."""
        matches: list[int] = []
        params: dict[str, Any] = {"name": job_name, "limit": 100}
        for _ in range(_MAX_PAGES):
            payload = await self._call("GET", "jobs/list", params=params)
            matches += [
                int(job["job_id"])
                for job in payload.get("jobs") or ()
                if (job.get("settings") or {}).get("name") == job_name
            ]
            token = payload.get("next_page_token")
            if not payload.get("has_more") or not token:
                break
            params["page_token"] = token
        if len(matches) != 1:
            raise JobLookupError(job_name=job_name, job_ids=tuple(matches))
        return matches[0]

    async def get_run(self, run_id: int, *, include_history: bool = False) -> Run:
        """``runs/get``, following API 2.2's ``next_page_token`` so ``tasks`` (and the other paged
        arrays) are complete. Scalar fields come from the first page. RunNotFound if unknown.
        ``include_history`` adds the run's ``repair_history``."""
        params: dict[str, Any] = {"run_id": int(run_id)}
        if include_history:
            params["include_history"] = "true"
        merged = await self._call("GET", "jobs/runs/get", params=params, run_id=run_id)
        token = merged.pop("next_page_token", None)
        seen: set[str] = set()
        while token and token not in seen and len(seen) < _MAX_PAGES:
            seen.add(token)
            page = await self._call(
                "GET", "jobs/runs/get", params={**params, "page_token": token}, run_id=run_id
            )
            for key, value in page.items():
                if isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
            token = page.get("next_page_token")
        return Run.from_api(merged)

    async def list_runs(
        self,
        *,
        active_only: bool = False,
        completed_only: bool = False,
        run_type: RunType | str | None = None,
        job_id: int | None = None,
        limit: int = 25,
        page_token: str | None = None,
        start_time_from_ms: int | None = None,
        start_time_to_ms: int | None = None,
    ) -> RunsPage:
        """One page of ``runs/list`` (``limit`` 1..25), newest first; pass ``next_page_token`` back."""
        if active_only and completed_only:
            raise ValueError("list_runs: active_only and completed_only are mutually exclusive")
        if not 1 <= limit <= 25:
            raise ValueError(f"list_runs: limit must be within 1..25, got {limit!r}")
        params: dict[str, Any] = {"limit": limit}
        optional = {
            "active_only": active_only or None,
            "completed_only": completed_only or None,
            "run_type": None if run_type is None else _known_run_type(run_type).value,
            "job_id": job_id,
            "page_token": page_token,
            "start_time_from": start_time_from_ms,
            "start_time_to": start_time_to_ms,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return RunsPage.from_api(await self._call("GET", "jobs/runs/list", params=params))

    async def cancel_run(self, run_id: int) -> None:
        """Ask for cancellation; returns at once while the run may still be RUNNING or TERMINATING."""
        await self._call(
            "POST", "jobs/runs/cancel", body={"run_id": int(run_id)}, idempotent=True, run_id=run_id
        )

    async def cancel_all_runs(self, job_id: int) -> None:
        """``runs/cancel-all`` of one job: ask to cancel every active run of ``job_id``.

        Returns at once, like ``cancel_run``; the runs then terminate CANCELED. Safe to repeat (a
        second request finds nothing left to cancel), so a lost answer is retried.
        """
        await self._call("POST", "jobs/runs/cancel-all", body={"job_id": int(job_id)}, idempotent=True)

    async def repair_run(
        self,
        run_id: int,
        *,
        latest_repair_id: int | None,
        parameters: Mapping[str, Any] | None = None,
    ) -> int:
        """``runs/repair``: re-run every failed task of a finished run, on the same run; the repair id.

        ``latest_repair_id`` is what the caller saw last (None before the first repair): the workspace
        refuses a repair based on an older view, so two callers racing to repair one run get one repair
        and one ``ApiError`` 400. The same refusal makes a lost answer safe to retry: a resent request
        whose first copy was applied is refused instead of repairing twice. ``parameters`` are further
        request fields (``job_parameters``...).
        """
        body: dict[str, Any] = {**(parameters or {}), "run_id": int(run_id), "rerun_all_failed_tasks": True}
        if latest_repair_id is not None:
            body["latest_repair_id"] = int(latest_repair_id)
        payload = await self._call("POST", "jobs/runs/repair", body=body, idempotent=True, run_id=run_id)
        return int(payload["repair_id"])

    async def update_job(self, job_id: int, new_settings: Mapping[str, Any]) -> None:
        """``jobs/update``: a partial update of a job's settings. Sending the same settings twice
        leaves the same job, so a lost answer is retried."""
        body = {"job_id": int(job_id), "new_settings": dict(new_settings)}
        await self._call("POST", "jobs/update", body=body, idempotent=True)

    async def get_run_output(self, run_id: int) -> RunOutput:
        """``runs/get-output`` of one *task* run (a multi-task parent run gives ApiError 400)."""
        payload = await self._call(
            "GET", "jobs/runs/get-output", params={"run_id": int(run_id)}, run_id=run_id
        )
        return RunOutput.from_api(payload, run_id=int(run_id))

    async def failed_task_errors(self, run: Run) -> tuple[TaskError, ...]:
        """The error of every task of ``run`` that failed itself (not skipped upstream), in task order.

        A task whose output cannot be read (e.g. aged out) still appears, with the API's message as
        ``error``: one missing output must not hide why the others failed.
        """
        # With task retries, runs/get lists every attempt of a task: only its latest one says whether
        # the task failed (an attempt a later retry made good is no failure), as the provider reads it.
        latest: dict[str, TaskRun] = {}
        for task in run.tasks:
            if task.task_key not in latest or task.attempt_number >= latest[task.task_key].attempt_number:
                latest[task.task_key] = task
        failed = [task for task in latest.values() if task.has_failed]

        async def error_of(task_run_id: int) -> tuple[str | None, str | None]:
            try:
                output = await self.get_run_output(task_run_id)
            except ApiError as exc:
                return f"(output unavailable: {exc.message})", None
            return output.error, output.error_trace

        outputs = await asyncio.gather(*(error_of(task.run_id) for task in failed))
        return tuple(
            TaskError(
                task_key=task.task_key,
                run_id=task.run_id,
                state=task.state,
                error=error or task.state.state_message or None,
                error_trace=trace,
                run_page_url=task.run_page_url,
            )
            for task, (error, trace) in zip(failed, outputs, strict=True)
        )

    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        run_id: int | None = None,
    ) -> dict[str, Any]:
        return await self._transport.call(
            self._open_session,
            method,
            endpoint,
            params=params,
            body=body,
            idempotent=idempotent,
            run_id=run_id,
        )

    def _open_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError(
                f"{self!r} is not open: use `async with DatabricksClient(...)` or `shared_client(...)`"
            )
        return session


def _apply_idempotency_token(body: dict[str, Any], token: str | None) -> bool:
    """Put ``token`` in ``body`` (overriding any in the spec); True if the request is now idempotent."""
    if token is None:
        return bool(body.get("idempotency_token"))
    if not token or len(token) > _MAX_IDEMPOTENCY_TOKEN_CHARS:
        raise ValueError(
            f"idempotency_token must be 1..{_MAX_IDEMPOTENCY_TOKEN_CHARS} characters, got {len(token)}"
        )
    body["idempotency_token"] = token
    return True


def _known_run_type(run_type: RunType | str) -> RunType:
    known = RunType(run_type)
    if known is RunType.UNKNOWN:
        valid = ", ".join(t.value for t in RunType if t is not RunType.UNKNOWN)
        raise ValueError(f"list_runs: run_type must be one of {valid}, got {run_type!r}")
    return known

"""``Emulator``: the workspace state plus the control methods tests call on it.

All methods are thread-safe (one lock), so a test may drive an emulator that a server thread is
serving. Request handlers take the same lock, so each API request is applied atomically.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from aiohttp import web

from .._clock import Clock
from ._auth import Authenticator, Credentials
from ._errors import UnknownRunError
from ._faults import Counters, RequestRecord, make_fault
from ._persist import StateFile, WorkspaceCodec
from ._render import render_run
from ._request_path import RequestPath
from ._runs import Attempt
from ._scripting import Outcome, check_fail_attempts, check_outcome
from ._store import EmulatedWorkspace
from ._surface import ControlSurface

_DAY = 86_400.0


def _check_seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}.")
    return float(value)


class Emulator(ControlSurface):
    """An in-memory Databricks workspace serving the Jobs API 2.1/2.2.

    ``run_seconds``: default time from submission to TERMINATED (10 % PENDING, 80 % RUNNING, 10 %
    TERMINATING). ``clock``: zero-argument callable returning epoch seconds (default ``time.time``;
    pass a ``ManualClock`` to step time in tests). ``state_file``: JSON file to load at start and to
    save to (atomically, debounced) after every change, so runs survive a restart.
    ``cancel_seconds``: how long a cancelled run stays TERMINATING. ``retention_seconds``: finished
    runs disappear after this long (Databricks: 60 days).
    """

    def __init__(
        self,
        *,
        token: str = "dapi-emulator-token",
        run_seconds: float = 5.0,
        clock: Clock | None = None,
        state_file: str | os.PathLike[str] | None = None,
        client_id: str = "emulator-client-id",
        client_secret: str = "emulator-client-secret",
        oauth_token_lifetime_seconds: float = 3600.0,
        basic_login: str = "emulator@example.com",
        basic_password: str = "emulator-password",
        user_name: str = "emulator@example.com",
        workspace_id: int = 1234567890123456,
        cancel_seconds: float = 0.5,
        retention_seconds: float = 60 * _DAY,
        request_log_size: int = 10_000,
        hold_timeout_seconds: float = 60.0,
    ) -> None:
        if not token:
            raise ValueError("token must be a non-empty string.")
        if (
            isinstance(request_log_size, bool)
            or not isinstance(request_log_size, int)
            or request_log_size < 0
        ):
            raise ValueError(f"request_log_size must be an integer >= 0, not {request_log_size!r}.")
        self._lock = threading.RLock()
        self._clock: Clock = clock or time.time
        self.credentials = Credentials(
            token=token,
            client_id=client_id,
            client_secret=client_secret,
            basic_login=basic_login,
            basic_password=basic_password,
            oauth_token_lifetime_seconds=_check_seconds(
                "oauth_token_lifetime_seconds", oauth_token_lifetime_seconds
            ),
        )
        self.workspace_id = workspace_id
        hold_timeout_seconds = _check_seconds("hold_timeout_seconds", hold_timeout_seconds)
        self._auth = Authenticator(self.credentials)
        self._workspace = EmulatedWorkspace(
            run_seconds=_check_seconds("run_seconds", run_seconds),
            cancel_seconds=_check_seconds("cancel_seconds", cancel_seconds),
            user_name=user_name,
            retention_seconds=_check_seconds("retention_seconds", retention_seconds),
        )
        # Everything the HTTP app needs, so that it reads none of the emulator's private state.
        self.request_path = RequestPath(
            lock=self._lock,
            clock=self._clock,
            auth=self._auth,
            workspace=self._workspace,
            workspace_id=workspace_id,
            on_change=self._changed,
            request_log_size=request_log_size,
            hold_timeout_seconds=hold_timeout_seconds,
        )
        self._codec = WorkspaceCodec()
        self._state = None if state_file is None else StateFile(state_file, self._snapshot_state)
        if self._state is not None:
            self._workspace.track_changes = True
            saved = self._state.load()
            if saved is not None:
                self._codec.load(self._workspace, saved)
                self._auth.load_state(saved.get("oauth_tokens", {}))

    @property
    def token(self) -> str:
        return self.credentials.token

    def make_app(self) -> web.Application:
        from ._app import make_app

        return make_app(self)

    @property
    def base_url(self) -> str:
        """Where run_page_url points: the server's URL once one serves the emulator."""
        return self.request_path.base_url

    @property
    def hold_timeout_seconds(self) -> float:
        return self.request_path.hold_timeout_seconds

    def _changed(self) -> None:
        if self._state is not None:
            self._state.mark_dirty()

    def _snapshot_state(self) -> str:
        with self._lock:
            return self._codec.encode(self._workspace, self._auth.to_state())

    # -- control operations: declared, and documented, on ControlSurface ---------------------------
    def set_default_outcome(
        self, result_state: str = "SUCCESS", duration_seconds: float | None = None, error: str | None = None
    ) -> None:
        outcome = Outcome(result_state, duration_seconds, error)
        with self._lock:
            self._workspace.default = outcome

    def script_run(
        self,
        run_id: int,
        result_state: str = "SUCCESS",
        duration_seconds: float | None = None,
        error: str | None = None,
        fail_attempts: int | None = None,
    ) -> None:
        outcome = Outcome(result_state, duration_seconds, error)
        check_fail_attempts(fail_attempts)
        with self._lock:
            run = self._workspace.runs.get(run_id)
            if run is None:
                raise UnknownRunError(run_id)
            self._workspace.script(run, outcome, self._clock(), fail_attempts=fail_attempts)
            self._changed()

    def finish_run(self, run_id: int, result_state: str = "SUCCESS", error: str | None = None) -> None:
        check_outcome(result_state, None)
        with self._lock:
            run = self._workspace.runs.get(run_id)
            if run is None:
                raise UnknownRunError(run_id)
            self._workspace.finish(run, Outcome(result_state, None, error), self._clock())
            self._changed()

    def inject_fault(
        self,
        endpoint: str | None = "runs/get",
        kind: str = "http_error",
        count: int = 1,
        status: int = 503,
        retry_after_seconds: float | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        fault = make_fault(
            kind, status=status, retry_after_seconds=retry_after_seconds, delay_seconds=delay_seconds
        )
        with self._lock:
            self.request_path.faults.add(endpoint, fault, count)

    def release_held(self) -> int:
        return self.request_path.release_held()

    def set_rate_limit(
        self,
        endpoint: str | None = None,
        requests_per_second: float | None = None,
        burst: float | None = None,
    ) -> None:
        with self._lock:
            self.request_path.rates.set(endpoint, requests_per_second, burst)

    def add_foreign_runs(self, count: int, active: bool = True) -> list[int]:
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
            raise ValueError(f"count must be an integer between 0 and 1000000, not {count!r}.")
        ids = []
        with self._lock:
            now = self._clock()
            for index in range(count):
                # Active ones started a while ago and run for days; finished ones ended an hour ago.
                start = now - 60.0 * (index + 1) if active else now - 3600.0 - 60.0 * (index + 1)
                run = self._workspace.create_run(
                    start,
                    task_specs=[{"task_key": "main", "notebook_task": {"notebook_path": "/Shared/etl"}}],
                    run_name=f"foreign-job-{index}",
                    run_type="JOB_RUN",
                    creator=f"someone-else-{index % 7}@example.com",
                    count=False,
                )
                length = 7 * _DAY if active else 1800.0
                run.attempts[0] = Attempt(start, start, start + 30, start + length, start + length + 10)
                # Other users' runs follow their own code, not this emulator's default outcome.
                run.tasks[0].result_state, run.tasks[0].error = "SUCCESS", None
                self._workspace._touch(run.run_id)
                ids.append(run.run_id)
            self._changed()
        return ids

    def add_token(self, token: str) -> None:
        with self._lock:
            self._auth.add_token(token)

    def revoke_token(self, token: str) -> bool:
        with self._lock:
            return self._auth.revoke_token(token)

    def counters(self) -> Counters:
        return self.request_path.counters()

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.request_path.request_log()

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            now = self._clock()
            return [
                render_run(r, now, self.request_path.page_url, with_history=True) for r in self._workspace
            ]

    def get_run(self, run_id: int) -> dict[str, Any]:
        with self._lock:
            run = self._workspace.runs.get(run_id)
            if run is None:
                raise UnknownRunError(run_id)
            return render_run(run, self._clock(), self.request_path.page_url, with_history=True)

    def reset(self) -> None:
        with self._lock:
            # Ids keep growing across resets: a late request of an earlier test (a cancel sent by a
            # trigger's on_kill after its DAG run was failed) must find no run, not the next test's.
            next_ids = self._workspace.next_id, self._workspace.next_job_id
            self._workspace.clear()
            self._workspace.next_id, self._workspace.next_job_id = next_ids
            self._workspace.default = Outcome()
            self._auth.reset_tokens()
            self.request_path.clear()
            self._changed()
        self.release_held()

    def flush(self) -> None:
        """Write the state file now (no-op without one)."""
        if self._state is not None:
            self._state.flush()

    def close(self) -> None:
        """Release held responses and write the state file; the emulator stays usable."""
        self.release_held()
        if self._state is not None:
            self._state.close()

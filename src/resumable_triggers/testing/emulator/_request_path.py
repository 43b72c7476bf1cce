"""``RequestPath``: what serving one API request needs of an ``Emulator``, and nothing a test calls.

The HTTP app (`_app`) sees an emulator only through this object::

    request ──> attach (first one)  where run_page_url points
            ──> admit               counted; throttled (rate limits) or given its fault, if any
            ──> apply / issue_token authenticated and applied to the workspace, under the lock
            ──> hold                kept back by a "hold" fault until released
            ──> record              its status in the counters and the request log
    page    ──> read                the run page (`_page`): read-only, none of the above

The path owns the traffic state (faults, rate limits, counters, request log, held answers); the
emulator's control operations (`ControlSurface`) change it through the methods below. It shares
the emulator's lock, clock, authenticator and workspace, so a request is applied atomically with
respect to the test's control calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, TypeVar

from ._auth import Authenticator
from ._faults import Counters, Fault, FaultBook, RateLimits, RequestRecord
from ._params import Context, Handler, Params
from ._store import EmulatedWorkspace

_T = TypeVar("_T")


class RequestPath:
    """The request side of one emulator; built by ``Emulator``, used by its app and servers."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        clock: Callable[[], float],
        auth: Authenticator,
        workspace: EmulatedWorkspace,
        workspace_id: int,
        on_change: Callable[[], None],
        request_log_size: int,
        hold_timeout_seconds: float,
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._auth = auth
        self._workspace = workspace
        self._on_change = on_change
        self.workspace_id = workspace_id
        self.hold_timeout_seconds = hold_timeout_seconds
        self.faults = FaultBook()
        self.rates = RateLimits()
        self._log: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._requests: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._throttled = 0
        self._held: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.attached = False
        self.base_url = "http://127.0.0.1"
        self.page_url = self._page_url_for(self.base_url)

    def _page_url_for(self, base_url: str) -> str:
        return base_url.rstrip("/") + f"/?o={self.workspace_id}#job/{{job_id}}/run/{{run_id}}"

    def attach(self, base_url: str) -> None:
        """Called by a server once bound (or by the first request when the app is served by someone
        else, e.g. aiohttp's test server), so run_page_url points at it."""
        with self._lock:
            self.attached = True
            self.base_url = base_url
            self.page_url = self._page_url_for(base_url)

    def admit(self, endpoint: str) -> tuple[float, Fault | None]:
        """Count the request; (seconds to wait, None) when throttled, else (0, the fault to apply)."""
        with self._lock:
            self._requests[endpoint] += 1
            wait = self.rates.wait_seconds(endpoint)
            if wait:
                self._throttled += 1
                return wait, None
            return 0.0, self.faults.take(endpoint)

    def apply(
        self, handler: Handler, params: Params, version: str, authorization: str | None, *, mutating: bool
    ) -> tuple[dict[str, Any], int | None]:
        """Authenticate and run a Jobs API handler on the workspace; (body, the run id it concerns)."""
        with self._lock:
            now = self._clock()
            self._auth.check(authorization, now)
            body, run_id = handler(self._workspace, params, Context(now, version, self.page_url))
            if mutating:
                self._on_change()
        return body, run_id

    def read(self, reader: Callable[[EmulatedWorkspace, float, str], _T]) -> _T:
        """``reader(workspace, now, page_url)`` under the lock, for the emulator's own page (`_page`):
        not authenticated, counted, logged or faulted, so it must change nothing."""
        with self._lock:
            return reader(self._workspace, self._clock(), self.page_url)

    def issue_token(self, authorization: str | None, form_body: bytes) -> dict[str, object]:
        """Answer an OAuth client-credentials request (``oidc/v1/token``)."""
        with self._lock:
            body = self._auth.issue_token(authorization, form_body, self._clock())
            self._on_change()
        return body

    def record(
        self, method: str, endpoint: str, status: int | None, run_id: int | None, fault: str | None
    ) -> None:
        """Log the request; ``status`` None: the connection was closed without an answer."""
        with self._lock:
            if status is not None:
                self._statuses[status] += 1
            self._log.append(RequestRecord(method, endpoint, status, self._clock(), run_id, fault))

    async def hold(self) -> None:
        """Keep the answer back until ``release_held()`` or ``hold_timeout_seconds``."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._held.append(entry)
        try:
            await asyncio.wait_for(event.wait(), self.hold_timeout_seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in self._held:
                    self._held.remove(entry)

    def release_held(self) -> int:
        with self._lock:
            held, self._held = self._held, []
        # Each held answer waits on its own server's loop, maybe another thread's.
        for loop, event in held:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
        return len(held)

    def counters(self) -> Counters:
        with self._lock:
            return Counters(
                runs_submitted=self._workspace.runs_submitted,
                requests_by_endpoint=dict(self._requests),
                responses_by_status=dict(self._statuses),
                throttled=self._throttled,
            )

    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        """Forget faults, limits, counters and the log (held answers are released separately)."""
        with self._lock:
            self.faults.clear()
            self.rates.clear()
            self._log.clear()
            self._requests.clear()
            self._statuses.clear()
            self._throttled = 0

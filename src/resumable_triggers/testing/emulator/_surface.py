"""The emulator's control surface, defined once: ``ControlSurface``, and how each operation travels.

Tests drive an emulator through the same operations whether it runs in their process or another::

    ControlSurface (Protocol)       every control operation: its signature, its docstring, its route
    ├── Emulator                    the in-process implementation (the emulator's state is there)
    └── EmulatorControl             the same operations over HTTP, for an emulator in a subprocess
                                    (`_control`; its routes are served by `handle_control`)

Each operation is declared here with ``@operation(http_method, route, ...)``, with its docstring
(both implementations subclass the Protocol explicitly, so ``help()`` finds it, and mypy checks that
their signatures fit). ``OPERATIONS`` is read off the Protocol, and the control routes and the
client's calls are derived from it: a new operation is one declaration here, its implementation on
``Emulator``, and a one-line ``EmulatorControl`` method. A parity test keeps all three identical.

On the wire, arguments are the JSON object of keyword arguments (GET: the query string), and a
result is ``result_key``'s value in the reply's JSON object (or the whole object, for a record);
``decode`` turns that JSON back into the Python value ``Emulator`` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from ._faults import Counters, RequestRecord

_F = TypeVar("_F", bound=Callable[..., Any])


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Operation:
    """How one control operation travels over ``/__emulator/<route>``."""

    name: str  # the ControlSurface member: "script_run"
    http_method: Literal["GET", "POST"]
    route: str  # "script-run"; GET operations may share one, told apart by their arguments
    result_key: str | None = None  # where the result is in the reply; None: the reply is the result
    decode: Callable[[Any], Any] = _same  # the reply's JSON -> what Emulator returns

    def encode(self, result: Any) -> Any:
        """The JSON reply for ``result`` (what ``decode`` reads back)."""
        if dataclasses.is_dataclass(result) and not isinstance(result, type):
            result = dataclasses.asdict(result)
        elif isinstance(result, list):
            result = [_as_json(item) for item in result]
        if self.result_key is not None:
            return {self.result_key: result}
        return {} if result is None else result


def _as_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def operation(
    http_method: Literal["GET", "POST"],
    route: str,
    *,
    result_key: str | None = None,
    decode: Callable[[Any], Any] = _same,
) -> Callable[[_F], _F]:
    """Declare a ``ControlSurface`` member as a control operation (see `Operation`)."""

    def declare(function: _F) -> _F:
        function.__emulator_operation__ = Operation(  # type: ignore[attr-defined]
            function.__name__, http_method, route, result_key, decode
        )
        return function

    return declare


def _counters(raw: Mapping[str, Any]) -> Counters:
    # JSON object keys are strings: the status codes come back as text.
    return Counters(
        runs_submitted=raw["runs_submitted"],
        requests_by_endpoint=dict(raw["requests_by_endpoint"]),
        responses_by_status={int(k): v for k, v in raw["responses_by_status"].items()},
        throttled=raw["throttled"],
    )


def _records(raw: list[dict[str, Any]]) -> list[RequestRecord]:
    return [RequestRecord(**record) for record in raw]


class ControlSurface(Protocol):
    """What a test can do to an emulator, in its process (`Emulator`) or another (`EmulatorControl`).

    Bad arguments or a run in the wrong state raise ``ValueError``; an unknown run id
    ``UnknownRunError`` (a ``LookupError``).
    """

    @operation("POST", "default-outcome")
    def set_default_outcome(
        self, result_state: str = "SUCCESS", duration_seconds: float | None = None, error: str | None = None
    ) -> None:
        """Outcome of runs created from now on. ``duration_seconds`` None: the emulator's run_seconds."""
        ...

    @operation("POST", "script-run")
    def script_run(
        self,
        run_id: int,
        result_state: str = "SUCCESS",
        duration_seconds: float | None = None,
        error: str | None = None,
        fail_attempts: int | None = None,
    ) -> None:
        """Decide how an unfinished run ends (all of its current tasks). ``duration_seconds`` counts
        from the attempt's start and never moves an end into the past; None keeps the timing.
        ``fail_attempts`` (integer >= 0, as ``emulator.fail_attempts``): each task's attempts numbered
        below it end FAILED (the current one, and repairs), later ones ``result_state`` now and the
        declared outcome in repairs; None: the current attempts end ``result_state``. Task retries
        not started yet are forgotten: a scripted attempt is the task's last in this run attempt."""
        ...

    @operation("POST", "finish-run")
    def finish_run(self, run_id: int, result_state: str = "SUCCESS", error: str | None = None) -> None:
        """Terminate an active run now with ``result_state``."""
        ...

    @operation("POST", "faults")
    def inject_fault(
        self,
        endpoint: str | None = "runs/get",
        kind: str = "http_error",
        count: int = 1,
        status: int = 503,
        retry_after_seconds: float | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        """Apply a fault to the next ``count`` requests of ``endpoint`` (None or "*": any endpoint)."""
        ...

    @operation("POST", "release-held", result_key="released")
    def release_held(self) -> int:
        """Let every response held by a "hold" fault go; returns how many were released."""
        ...

    @operation("POST", "rate-limit")
    def set_rate_limit(
        self,
        endpoint: str | None = None,
        requests_per_second: float | None = None,
        burst: float | None = None,
    ) -> None:
        """Answer 429 with Retry-After beyond ``requests_per_second`` (bursts up to ``burst``, default
        one second's worth). ``endpoint`` None: one limit shared by all endpoints. None/0 disables."""
        ...

    @operation("POST", "foreign-runs", result_key="run_ids")
    def add_foreign_runs(self, count: int, active: bool = True) -> list[int]:
        """Add runs of other users (JOB_RUN, not counted as submitted); returns their ids."""
        ...

    @operation("POST", "add-token")
    def add_token(self, token: str) -> None:
        """Accept one more personal access token (the new one of a rotation)."""
        ...

    @operation("POST", "revoke-token", result_key="revoked")
    def revoke_token(self, token: str) -> bool:
        """Stop accepting a personal access token: requests with it get 403 "Invalid access token."
        (also the configured ``token``). False if it was not accepted. ``reset()`` restores ``token``."""
        ...

    @operation("GET", "counters", decode=_counters)
    def counters(self) -> Counters:
        """Runs submitted, requests by endpoint, responses by status, requests throttled."""
        ...

    @property
    @operation("GET", "request-log", result_key="records", decode=_records)
    def request_log(self) -> list[RequestRecord]:
        """The most recent requests, oldest first (a copy)."""
        ...

    @operation("GET", "runs", result_key="runs")
    def runs(self) -> list[dict[str, Any]]:
        """``runs/get`` JSON (unpaged, with repair history) of every run, oldest first."""
        ...

    @operation("GET", "runs")
    def get_run(self, run_id: int) -> dict[str, Any]:
        """``runs/get`` JSON (unpaged, with repair history) of one run."""
        ...

    @operation("POST", "reset")
    def reset(self) -> None:
        """Forget runs, jobs, tokens, scripts, faults, limits, counters and the log (not OAuth tokens);
        accept only the configured PAT again. New run and job ids continue where they were, so a
        late request about a forgotten run finds nothing rather than a new run with its id."""
        ...


OPERATIONS: tuple[Operation, ...] = tuple(
    getattr(member, "fget", member).__emulator_operation__  # a property's operation is on its getter
    for member in vars(ControlSurface).values()
    if hasattr(getattr(member, "fget", member), "__emulator_operation__")
)

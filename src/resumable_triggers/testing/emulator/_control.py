"""The control API under ``/__emulator/`` and ``EmulatorControl``, its synchronous client.

Loopback test infrastructure: no auth, never counted or logged as API traffic. The routes are those
of ``ControlSurface`` (`_surface`), one per operation, whose declarations they are derived from;
bodies are JSON objects of the operation's keyword arguments (GET: the query string):

====================================  ==============================================================
``POST /__emulator/default-outcome``  ``{result_state, duration_seconds, error}``
``POST /__emulator/script-run``       ``{run_id, result_state, duration_seconds, error}``
``POST /__emulator/finish-run``       ``{run_id, result_state, error}``
``POST /__emulator/faults``           ``{endpoint, kind, count, status, retry_after_seconds, delay_seconds}``
``POST /__emulator/release-held``     -> ``{released}``
``POST /__emulator/rate-limit``       ``{endpoint, requests_per_second, burst}``
``POST /__emulator/foreign-runs``     ``{count, active}`` -> ``{run_ids}``
``POST /__emulator/add-token``        ``{token}``: accept one more personal access token
``POST /__emulator/revoke-token``     ``{token}`` -> ``{revoked}``
``GET  /__emulator/counters``         the ``Counters`` fields
``GET  /__emulator/request-log``      ``{records: [...]}``
``GET  /__emulator/runs[?run_id=N]``  ``{runs: [...]}`` or one run
``POST /__emulator/reset``
====================================  ==============================================================

Errors: 400 ``{"error": ...}`` for bad arguments or a run in the wrong state, 404 for an unknown run.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._errors import UnknownRunError
from ._faults import Counters, RequestRecord
from ._surface import OPERATIONS, ControlSurface, Operation

_BY_NAME = {op.name: op for op in OPERATIONS}
_BY_ROUTE: dict[tuple[str, str], list[Operation]] = {}
for _op in OPERATIONS:
    _BY_ROUTE.setdefault((_op.http_method, _op.route), []).append(_op)


def _declared(op: Operation) -> Callable[..., Any]:
    member = inspect.getattr_static(ControlSurface, op.name)
    if isinstance(member, property):
        assert member.fget is not None
        return member.fget
    return typing.cast(Callable[..., Any], member)


@functools.cache
def _signature(op: Operation) -> inspect.Signature:
    return inspect.signature(_declared(op))


@functools.cache
def _int_parameters(op: Operation) -> frozenset[str]:
    hints = typing.get_type_hints(_declared(op))
    return frozenset(name for name, hint in hints.items() if hint is int and name != "return")


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


def _choose(candidates: list[Operation], args: dict[str, Any]) -> Operation:
    """The operation of a route that takes ``args`` (GET routes may serve two: ``runs``, ``get_run``)."""
    for op in candidates:
        try:
            _signature(op).bind(None, **args)
        except TypeError:
            continue
        return op
    _signature(candidates[-1]).bind(None, **args)  # raises the TypeError that names the bad argument
    raise AssertionError("unreachable")


def perform(surface: ControlSurface, op: Operation, args: dict[str, Any]) -> Any:
    """Run ``op`` on ``surface`` with keyword ``args``."""
    if isinstance(inspect.getattr_static(ControlSurface, op.name), property):
        if args:
            raise TypeError(f"{op.name} takes no arguments, got {sorted(args)}")
        return getattr(surface, op.name)
    return getattr(surface, op.name)(**args)


async def handle_control(surface: ControlSurface, request: web.Request) -> web.Response:
    name = request.path[len("/__emulator/") :].strip("/")
    candidates = _BY_ROUTE.get((request.method, name))
    if not candidates:
        return _reply({"error": f"No control route {request.method} /__emulator/{name}"}, 404)
    try:
        if request.method == "GET":
            args: Any = dict(request.query)
        else:
            raw = await request.read()
            args = json.loads(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object of keyword arguments")
        op = _choose(candidates, args)
        if request.method == "GET":
            # Query strings carry text; the operation's annotations say which values are numbers.
            args = {k: int(v) if k in _int_parameters(op) else v for k, v in args.items()}
        return _reply(op.encode(perform(surface, op, args)))
    except UnknownRunError as exc:
        return _reply({"error": str(exc)}, 404)
    except (ValueError, TypeError) as exc:
        # TypeError: an unknown or missing keyword argument.
        return _reply({"error": str(exc)}, 400)


class EmulatorControl(ControlSurface):
    """Drive an emulator in another process over ``/__emulator/``: the ``ControlSurface`` operations.

    Raises ``ValueError`` for bad arguments, ``UnknownRunError`` for an unknown run id, and
    ``ConnectionError`` when the emulator cannot be reached. ``timeout_seconds`` bounds each call.
    """

    def __init__(self, url: str, *, timeout_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds

    def _invoke(self, name: str, args: dict[str, Any]) -> Any:
        op = _BY_NAME[name]
        if op.http_method == "GET":
            query = f"?{urllib.parse.urlencode(args)}" if args else ""
            data = None
        else:
            query, data = "", json.dumps(args).encode()
        request = urllib.request.Request(
            f"{self.url}/__emulator/{op.route}{query}",
            data=data,
            method=op.http_method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                body = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read() or b"{}").get("error", str(exc))
            finally:
                exc.close()
            if exc.code == 404 and "run_id" in args:
                raise UnknownRunError(int(args["run_id"])) from exc
            raise ValueError(message) from exc
        except urllib.error.URLError as exc:
            raise ConnectionError(f"Emulator control API at {self.url} is unreachable: {exc.reason}") from exc
        return op.decode(body if op.result_key is None else body[op.result_key])

    # One line per operation: the signatures are ControlSurface's (a parity test says so), and so are
    # the docstrings, which help() finds there.

    def set_default_outcome(
        self, result_state: str = "SUCCESS", duration_seconds: float | None = None, error: str | None = None
    ) -> None:
        self._invoke("set_default_outcome", _arguments(locals()))

    def script_run(
        self,
        run_id: int,
        result_state: str = "SUCCESS",
        duration_seconds: float | None = None,
        error: str | None = None,
        fail_attempts: int | None = None,
    ) -> None:
        self._invoke("script_run", _arguments(locals()))

    def finish_run(self, run_id: int, result_state: str = "SUCCESS", error: str | None = None) -> None:
        self._invoke("finish_run", _arguments(locals()))

    def inject_fault(
        self,
        endpoint: str | None = "runs/get",
        kind: str = "http_error",
        count: int = 1,
        status: int = 503,
        retry_after_seconds: float | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        self._invoke("inject_fault", _arguments(locals()))

    def release_held(self) -> int:
        return int(self._invoke("release_held", {}))

    def set_rate_limit(
        self,
        endpoint: str | None = None,
        requests_per_second: float | None = None,
        burst: float | None = None,
    ) -> None:
        self._invoke("set_rate_limit", _arguments(locals()))

    def add_foreign_runs(self, count: int, active: bool = True) -> list[int]:
        return list(self._invoke("add_foreign_runs", _arguments(locals())))

    def add_token(self, token: str) -> None:
        self._invoke("add_token", _arguments(locals()))

    def revoke_token(self, token: str) -> bool:
        return bool(self._invoke("revoke_token", _arguments(locals())))

    def counters(self) -> Counters:
        result: Counters = self._invoke("counters", {})
        return result

    @property
    def request_log(self) -> list[RequestRecord]:
        return list(self._invoke("request_log", {}))

    def runs(self) -> list[dict[str, Any]]:
        return list(self._invoke("runs", {}))

    def get_run(self, run_id: int) -> dict[str, Any]:
        return dict(self._invoke("get_run", {"run_id": int(run_id)}))

    def reset(self) -> None:
        self._invoke("reset", {})


def _arguments(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "self"}

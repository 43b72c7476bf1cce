"""The control API under ``/__emulator/`` and ``EmulatorControl``, its synchronous client.

Loopback test infrastructure: no auth, never counted or logged as API traffic. Routes mirror the
``Emulator`` methods; bodies are JSON objects of their keyword arguments:

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

import dataclasses
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._errors import UnknownRunError
from ._faults import Counters, RequestRecord

if TYPE_CHECKING:
    from ._emulator import Emulator

_ACTIONS: dict[str, Callable[[Emulator, dict[str, Any]], Any]] = {
    "default-outcome": lambda e, a: e.set_default_outcome(**a),
    "script-run": lambda e, a: e.script_run(**a),
    "finish-run": lambda e, a: e.finish_run(**a),
    "faults": lambda e, a: e.inject_fault(**a),
    "release-held": lambda e, a: {"released": e.release_held()},
    "rate-limit": lambda e, a: e.set_rate_limit(**a),
    "foreign-runs": lambda e, a: {"run_ids": e.add_foreign_runs(**a)},
    "add-token": lambda e, a: e.add_token(**a),
    "revoke-token": lambda e, a: {"revoked": e.revoke_token(**a)},
    "reset": lambda e, a: e.reset(),
}


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")


async def handle_control(emulator: Emulator, request: web.Request) -> web.Response:
    name = request.path[len("/__emulator/") :].strip("/")
    try:
        if request.method == "GET":
            return _reply(_read(emulator, name, request.query.get("run_id")))
        action = _ACTIONS.get(name) if request.method == "POST" else None
        if action is None:
            return _reply({"error": f"No control route {request.method} /__emulator/{name}"}, 404)
        raw = await request.read()
        args = json.loads(raw) if raw.strip() else {}
        if not isinstance(args, dict):
            raise ValueError("the body must be a JSON object of keyword arguments")
        result = action(emulator, args)
        return _reply(result if result is not None else {})
    except UnknownRunError as exc:
        return _reply({"error": str(exc)}, 404)
    except LookupError:
        return _reply({"error": f"No control route GET /__emulator/{name}"}, 404)
    except (ValueError, TypeError) as exc:
        # TypeError: an unknown or missing keyword argument.
        return _reply({"error": str(exc)}, 400)


def _read(emulator: Emulator, name: str, run_id: str | None) -> Any:
    if name == "counters":
        return dataclasses.asdict(emulator.counters())
    if name == "request-log":
        return {"records": [dataclasses.asdict(r) for r in emulator.request_log]}
    if name == "runs":
        if run_id is not None:
            return emulator.get_run(int(run_id))
        return {"runs": emulator.runs()}
    raise LookupError(name)


class EmulatorControl:
    """Drive an emulator in another process over ``/__emulator/``: the ``Emulator`` control methods.

    Raises ``ValueError`` for bad arguments, ``UnknownRunError`` for an unknown run id, and
    ``ConnectionError`` when the emulator cannot be reached. ``timeout_seconds`` bounds each call.
    """

    def __init__(self, url: str, *, timeout_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds

    def _call(self, method: str, name: str, args: dict[str, Any] | None = None, query: str = "") -> Any:
        data = None if method == "GET" else json.dumps(args or {}).encode()
        request = urllib.request.Request(
            f"{self.url}/__emulator/{name}{query}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read() or b"{}").get("error", str(exc))
            finally:
                exc.close()
            if exc.code == 404 and args and "run_id" in args:
                raise UnknownRunError(int(args["run_id"])) from exc
            raise ValueError(message) from exc
        except urllib.error.URLError as exc:
            raise ConnectionError(f"Emulator control API at {self.url} is unreachable: {exc.reason}") from exc

    def set_default_outcome(
        self, result_state: str = "SUCCESS", duration_seconds: float | None = None, error: str | None = None
    ) -> None:
        self._call("POST", "default-outcome", locals_without_self(locals()))

    def script_run(
        self,
        run_id: int,
        result_state: str = "SUCCESS",
        duration_seconds: float | None = None,
        error: str | None = None,
    ) -> None:
        self._call("POST", "script-run", locals_without_self(locals()))

    def finish_run(self, run_id: int, result_state: str = "SUCCESS", error: str | None = None) -> None:
        self._call("POST", "finish-run", locals_without_self(locals()))

    def inject_fault(
        self,
        endpoint: str | None = "runs/get",
        kind: str = "http_error",
        count: int = 1,
        status: int = 503,
        retry_after_seconds: float | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        self._call("POST", "faults", locals_without_self(locals()))

    def release_held(self) -> int:
        return int(self._call("POST", "release-held")["released"])

    def set_rate_limit(
        self,
        endpoint: str | None = None,
        requests_per_second: float | None = None,
        burst: float | None = None,
    ) -> None:
        self._call("POST", "rate-limit", locals_without_self(locals()))

    def add_foreign_runs(self, count: int, active: bool = True) -> list[int]:
        return list(self._call("POST", "foreign-runs", {"count": count, "active": active})["run_ids"])

    def add_token(self, token: str) -> None:
        self._call("POST", "add-token", {"token": token})

    def revoke_token(self, token: str) -> bool:
        return bool(self._call("POST", "revoke-token", {"token": token})["revoked"])

    def counters(self) -> Counters:
        raw = self._call("GET", "counters")
        return Counters(
            runs_submitted=raw["runs_submitted"],
            requests_by_endpoint=dict(raw["requests_by_endpoint"]),
            responses_by_status={int(k): v for k, v in raw["responses_by_status"].items()},
            throttled=raw["throttled"],
        )

    @property
    def request_log(self) -> list[RequestRecord]:
        return [RequestRecord(**r) for r in self._call("GET", "request-log")["records"]]

    def runs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "runs")["runs"])

    def get_run(self, run_id: int) -> dict[str, Any]:
        try:
            return dict(self._call("GET", "runs", query=f"?run_id={int(run_id)}"))
        except ValueError as exc:
            raise UnknownRunError(run_id) from exc

    def reset(self) -> None:
        self._call("POST", "reset")


def locals_without_self(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "self"}

"""The aiohttp application: one catch-all handler that routes, throttles, faults, authenticates.

A single dispatcher (rather than aiohttp's router plus middlewares) keeps the per-request path short,
which is what lets one core serve well over a thousand ``runs/get`` a second, and lets unknown routes
and wrong methods answer in the Databricks error shape. The app holds the emulator's
``RequestPath`` (everything a request needs) and, for ``/__emulator/``, its ``ControlSurface``; ``/``
and ``/__emulator/ui/`` are the run page (`_page`), which reads through the ``RequestPath``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from resumable_triggers.databricks.client import _schema

from ._api import ROUTES
from ._control import handle_control
from ._errors import ErrorReply, endpoint_not_found
from ._page import is_page, serve_page
from ._params import Params, parse_body
from ._request_path import RequestPath
from ._surface import ControlSurface

if TYPE_CHECKING:
    from ._emulator import Emulator

log = logging.getLogger(__name__)

# The app holds what requests need (RequestPath) and what control calls need (the surface), never
# the emulator's private state.
REQUEST_PATH_KEY: web.AppKey[RequestPath] = web.AppKey("request_path")
SURFACE_KEY: web.AppKey[ControlSurface] = web.AppKey("control_surface")
_JOBS_VERSIONS = frozenset({"2.1", "2.2"})


def endpoint_of(path: str) -> tuple[str, str | None]:
    """``/api/2.2/jobs/runs/get`` -> ("runs/get", "2.2"); ``/api/2.2/jobs/list`` -> ("jobs/list", "2.2")."""
    if path.startswith("/api/"):
        version, _, tail = path[5:].partition("/")
        if tail.startswith("jobs/"):
            rest = tail[5:]
            if rest.startswith("runs/") or rest == "run-now":
                return rest, version
            return "jobs/" + rest, version
        return tail, version
    return path.lstrip("/"), None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers=headers, content_type="application/json"
    )


def _drop(request: web.Request) -> web.Response:
    # Closing the transport and returning normally makes aiohttp skip the write quietly; the client
    # sees the connection closed with no answer.
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=499)


async def dispatch(request: web.Request) -> web.StreamResponse:
    method = request.method
    page = is_page(method, request.path)
    # The control API and the run page are test infrastructure, not API traffic: they skip the
    # throttles, faults, auth and counters below.
    if request.path.startswith("/__emulator/") and not page:
        return await handle_control(request.app[SURFACE_KEY], request)
    path = request.app[REQUEST_PATH_KEY]
    if not path.attached:
        path.attach(f"{request.scheme}://{request.host}")
    if page:
        return serve_page(path, request)
    endpoint, version = endpoint_of(request.path)
    wait, fault = path.admit(endpoint)
    if wait:
        retry_after = max(1, math.ceil(wait))
        error = ErrorReply(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            f"Too many requests to {endpoint}; retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
        path.record(method, endpoint, 429, None, "rate_limit")
        return json_response(error.body, 429, error.headers)
    kind = fault.kind if fault else None
    if fault is not None:
        if fault.kind == "http_error":
            headers = (
                {} if fault.retry_after_seconds is None else {"Retry-After": str(fault.retry_after_seconds)}
            )
            code = {429: "REQUEST_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}.get(
                fault.status, "INTERNAL_ERROR"
            )
            if fault.status < 500 and fault.status != 429:
                code = "BAD_REQUEST"
            path.record(method, endpoint, fault.status, None, kind)
            message = f"Injected fault: {fault.status} on {endpoint}; the request was not applied."
            return json_response({"error_code": code, "message": message}, fault.status, headers)
        if fault.kind == "drop":
            path.record(method, endpoint, None, None, kind)
            return _drop(request)
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
    try:
        body, run_id, status = await _serve(path, request, method, endpoint, version)
        response = json_response(body, status)
    except ErrorReply as error:
        run_id, status = None, error.status
        response = json_response(error.body, error.status, error.headers)
    except Exception:  # last resort: a bug must answer JSON, never a traceback page
        log.exception("emulator bug while serving %s %s", method, endpoint)
        run_id, status = None, 500
        response = json_response(
            {"error_code": "INTERNAL_ERROR", "message": "Emulator bug; see its log."}, 500
        )
    if kind == "lose_response":
        path.record(method, endpoint, None, run_id, kind)
        return _drop(request)
    if kind == "hold":
        await path.hold()
    path.record(method, endpoint, status, run_id, kind)
    return response


async def _serve(
    path: RequestPath, request: web.Request, method: str, endpoint: str, version: str | None
) -> tuple[Any, int | None, int]:
    try:
        raw = await request.read() if request.body_exists else b""
    except web.HTTPRequestEntityTooLarge as exc:
        raise ErrorReply(413, "REQUEST_ENTITY_TOO_LARGE", "The request body is too large.") from exc
    if version is None:
        return _serve_public(path, request, method, endpoint, raw)
    handler = ROUTES.get((method, endpoint)) if version in _JOBS_VERSIONS else None
    if handler is None:
        raise endpoint_not_found(method, path_after_api(request.path))
    values: dict[str, Any] = {}
    if method == "GET":
        values.update(request.query)
        # The provider's async hook sends GET parameters as a JSON body.
        if raw:
            values.update(parse_body(raw))
    else:
        values = parse_body(raw)
    authorization = request.headers.get("Authorization")
    body, run_id = path.apply(handler, Params(values), version, authorization, mutating=method != "GET")
    return body, run_id, 200


def path_after_api(path: str) -> str:
    version, _, tail = path[5:].partition("/")
    return "/" + tail if version else path


def _serve_public(
    path: RequestPath, request: web.Request, method: str, endpoint: str, raw: bytes
) -> tuple[Any, int | None, int]:
    origin = f"{request.scheme}://{request.host}"
    if method == "GET" and endpoint == ".well-known/databricks-config":
        # Without oidc_endpoint databricks-sdk has no discovery URL and OAuth M2M cannot start.
        return {"oidc_endpoint": f"{origin}/oidc", "workspace_id": str(path.workspace_id)}, None, 200
    if method == "GET" and endpoint == "oidc/.well-known/oauth-authorization-server":
        return (
            {
                "issuer": f"{origin}/oidc",
                "authorization_endpoint": f"{origin}/oidc/v1/authorize",
                "token_endpoint": f"{origin}/oidc/v1/token",
                "jwks_uri": f"{origin}/oidc/jwks.json",
                "grant_types_supported": ["client_credentials"],
                "response_types_supported": ["code"],
                "scopes_supported": ["all-apis", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            },
            None,
            200,
        )
    if method == "POST" and endpoint == "oidc/v1/token":
        return path.issue_token(request.headers.get("Authorization"), raw), None, 200
    raise endpoint_not_found(method, request.path)


def make_app(emulator: Emulator) -> web.Application:
    # Reading the request schema imports databricks-sdk (about a second): pay it here, once per
    # process, rather than inside the first submit a client has put a deadline on.
    _schema.warm()
    # client_max_size bounds what a malformed or hostile body can make the emulator buffer.
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[REQUEST_PATH_KEY] = emulator.request_path
    app[SURFACE_KEY] = emulator
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app

"""HTTP plumbing: the shared session's construction, proxy lookup and error-body decoding."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import aiohttp

from resumable_triggers import __version__
from resumable_triggers.databricks.client._errors import (
    ApiError,
    AuthError,
    RunNotFound,
    TlsVerificationError,
    TransportError,
)
from resumable_triggers.databricks.client._retry import parse_retry_after
from resumable_triggers.databricks.client._settings import ClientSettings

__all__ = ["api_error", "env_proxy", "new_session", "normalise_host", "send_once"]

logger = logging.getLogger(__name__)

_RUN_DOES_NOT_EXIST = re.compile(r"\bRun (\d+) does not exist\b")
_USER_AGENT = f"resumable-triggers/{__version__} aiohttp/{aiohttp.__version__}"
# Long enough to read a Databricks error, short enough that a proxy's HTML page does not flood logs.
_MAX_MESSAGE_CHARS = 500


def normalise_host(host: str) -> str:
    """``https://adb-1.azuredatabricks.net`` from a host given with or without scheme or trailing /."""
    candidate = host.strip().rstrip("/")
    if "://" not in candidate:
        candidate = f"https://{candidate}"
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        # The host is not echoed: a mistyped connection string may hold a secret.
        raise ValueError(
            "Databricks host must look like https://<workspace>.cloud.databricks.com (no credentials "
            "in the URL)"
        )
    return candidate


def env_proxy(base_url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY...) asks for, as databricks-sdk would use it.

    Looked up once per client: aiohttp's own ``trust_env`` would also read ``~/.netrc`` on every
    request, in a thread, and refuse to combine it with our Authorization header.
    """
    parts = urlsplit(base_url)
    if parts.hostname is None or proxy_bypass_environment(parts.hostname):
        return None
    return getproxies_environment().get(parts.scheme)


def new_session(settings: ClientSettings) -> aiohttp.ClientSession:
    """A session meant to be shared by every request to one workspace identity on one event loop."""
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=settings.max_connections,
        # True: verify against the default CA bundle; False: no verification at all.
        ssl=settings.verify_tls,
    )
    # ``total`` bounds one attempt end to end; the client's own semaphore keeps pool waits out of it.
    timeout = aiohttp.ClientTimeout(
        total=settings.request_timeout_seconds, sock_connect=settings.connect_timeout_seconds
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": _USER_AGENT},
        raise_for_status=False,
        trust_env=False,
    )


async def send_once(
    session: aiohttp.ClientSession,
    *,
    method: str,
    host: str,
    endpoint: str,
    query: Mapping[str, str],
    body: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    proxy: str | None,
    attempt: int,
    run_id: int | None,
    timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """One HTTP exchange with ``{host}/api/2.2/{endpoint}``; the JSON object it answered.

    ``timeout_seconds`` caps this attempt below the session's ``total`` timeout (the connect budget
    of a call that has not been answered yet); None keeps the session's.

    Raises ApiError (or a subclass) for HTTP error statuses and TransportError for anything that is
    not a usable answer. Logs one debug line per attempt: never the headers.
    """
    started = time.monotonic()
    timeout = session.timeout
    if timeout_seconds is not None and (timeout.total is None or timeout_seconds < timeout.total):
        timeout = aiohttp.ClientTimeout(
            total=timeout_seconds,
            connect=timeout.connect,
            sock_read=timeout.sock_read,
            sock_connect=timeout.sock_connect,
        )
    try:
        async with session.request(
            method,
            f"{host}/api/2.2/{endpoint}",
            params=query or None,
            json=body,
            headers=headers,
            proxy=proxy,
            timeout=timeout,
        ) as response:
            status = response.status
            content = await response.read()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
        raise TlsVerificationError(
            f"TLS verification of {host} failed for {method} {endpoint}: {type(exc).__name__}; "
            "fix the CA bundle (SSL_CERT_FILE) rather than disabling verify_tls",
            method=method,
            endpoint=endpoint,
            request_sent=False,
        ) from exc
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        logger.debug("Databricks %s %s -> %s (attempt %d)", method, endpoint, type(exc).__name__, attempt)
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise TransportError(
            f"{method} {endpoint} on {host} got no answer ({detail}); check network access to the workspace",
            method=method,
            endpoint=endpoint,
            # Only a failed connect proves the request never left; anything later may have been applied.
            request_sent=not isinstance(exc, aiohttp.ClientConnectorError),
        ) from exc
    logger.debug(
        "Databricks %s %s -> %d (attempt %d, %.3f s)",
        method,
        endpoint,
        status,
        attempt,
        time.monotonic() - started,
    )
    if status >= 400:
        raise api_error(
            status=status, body=content, endpoint=endpoint, retry_after_seconds=retry_after, run_id=run_id
        )
    try:
        payload = json.loads(content) if content else {}
    except ValueError as exc:
        raise TransportError(
            f"{method} {endpoint} on {host} answered HTTP {status} with a body that is not JSON; "
            "is a proxy in the way?",
            method=method,
            endpoint=endpoint,
            request_sent=True,
        ) from exc
    if not isinstance(payload, dict):
        raise TransportError(
            f"{method} {endpoint} on {host} answered HTTP {status} with JSON that is not an object",
            method=method,
            endpoint=endpoint,
            request_sent=True,
        )
    return payload


def api_error(
    *,
    status: int,
    body: bytes,
    endpoint: str,
    retry_after_seconds: float | None,
    run_id: int | None,
) -> ApiError:
    """The typed error for an HTTP error answer; ``run_id`` is the run the request was about, if any."""
    error_code, message = _decode_error_body(body)
    if run_id is not None:
        match = _RUN_DOES_NOT_EXIST.search(message)
        if (status == 400 and error_code == "INVALID_PARAMETER_VALUE" and match) or (
            status == 404 and error_code == "RESOURCE_DOES_NOT_EXIST"
        ):
            return RunNotFound(
                run_id=int(match.group(1)) if match else run_id,
                status=status,
                error_code=error_code,
                message=message,
                endpoint=endpoint,
            )
    cls = AuthError if status in (401, 403) else ApiError
    return cls(
        status=status,
        error_code=error_code,
        message=message,
        endpoint=endpoint,
        retry_after_seconds=retry_after_seconds,
    )


def _decode_error_body(body: bytes) -> tuple[str | None, str]:
    try:
        payload: Any = json.loads(body) if body else {}
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = payload.get("error_code") or payload.get("error")
        message = payload.get("message") or payload.get("error_description") or ""
        return (str(code) if code else None), str(message)[:_MAX_MESSAGE_CHARS]
    text = body.decode("utf-8", errors="replace").strip()
    return None, (text[:_MAX_MESSAGE_CHARS] or "(empty body)")

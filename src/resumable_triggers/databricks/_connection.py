"""From a user's existing Airflow Databricks connection to a workspace host and auth headers.

Users keep their ``databricks_default`` connection in the Databricks provider's format; we translate
it into ``databricks.sdk.config.Config`` arguments and let the SDK do every auth flow. The mapping is a
pure function of the connection's fields, so it is tested without Airflow; only the lookup touches it.

Auth, first match (as the provider decides):

==========================================  ======================================================
connection                                  databricks-sdk ``Config``
==========================================  ======================================================
``extra.token``                             ``token`` (personal access token)
``password`` with empty ``login``           ``token``
``extra.service_principal_oauth`` + login   ``client_id`` / ``client_secret`` (OAuth M2M)
``extra.azure_tenant_id`` + login/password  ``azure_client_id`` / ``azure_client_secret`` / tenant
``extra.use_azure_managed_identity``        ``azure_use_msi`` (+ ``azure_client_id`` from login)
``login`` + ``password``                    ``username`` / ``password`` (basic)
nothing                                     the SDK's default resolution (env, ~/.databrickscfg)
==========================================  ======================================================

The host is parsed strictly: ``https://``, ``http://`` or ``not a host!!`` are configuration errors
naming the field, never URLs like ``https://https``. A path or query (a URL pasted from the browser)
is dropped, as the provider drops it.

Two promises on top of the mapping:

- **Connect budget.** databricks-sdk's ``Config()`` probes ``/.well-known/databricks-config`` with
  its own retry budget (300 s by default), in a thread nothing may wait for. We build it within
  ``ClientSettings.connect_budget_seconds`` (30 s), and the client stops
  retrying a call that never got an HTTP answer after the same budget, so a workspace that does not
  answer fails a call within about ``connect_budget_seconds + connect_timeout_seconds`` (40 s by
  default; measured 31 s for a refused port, 40 s for a host that accepts and never answers),
  naming the host. An ``execution_timeout`` shorter than that fails the task at the timeout (a
  submit in flight gets 5 s more to answer, so that the run it names can be cancelled: ``_signals``).
- **Rotation.** The triggerer maps each connection once per event loop; its headers come from a
  ``ConnectionHeaderProvider``, which re-reads the connection when the workspace rejects them
  (401/403), so a token rotated in the Airflow connection is picked up by running triggers. Airflow's
  ``[secrets] use_cache`` (off by default) would delay that by up to its TTL. The worker reads the
  connection afresh on every try.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from databricks.sdk.config import Config

from resumable_triggers.databricks.client import (
    ClientSettings,
    CredentialsError,
    HeaderProvider,
    SdkHeaderProvider,
)

log = logging.getLogger(__name__)

# One DNS label; a host is one or more, dot-separated (IP literals are checked apart).
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

# Provider extras we cannot honour: naming them beats silently authenticating some other way.
_UNSUPPORTED_EXTRAS = (
    "federated_k8s",
    "use_default_azure_credential",
    "azure_resource_id",
    "oauth2_client_id",
)


class ConnectionConfigError(ValueError):
    """The Airflow connection cannot be mapped to Databricks credentials; the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFields:
    conn_id: str
    host: str | None = None
    schema: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where to send requests and how to authenticate them; safe to log (no secrets in the repr)."""

    host: str
    headers: HeaderProvider


def workspace_host(fields: ConnectionFields) -> str:
    """``scheme://host[:port]`` from the connection, by the provider's hook's rule; ConnectionConfigError
    naming the field otherwise.

    The rule (``DatabricksHook._endpoint_url``): the URL is ``{schema or "https"}://{host}:{port}``.
    ``host`` (or ``extra.host``) is the host name; a URL pasted there is accepted, its path dropped,
    but the hook ignores its scheme and port, so they must agree with ``schema`` and ``port``: a
    connection that the provider's hook and this library would read as two different URLs is refused,
    naming the fields to set. ``testing.airflow_connection`` writes connections by the same rule.
    """
    name = "extra.host" if fields.extra.get("host") else "host"
    raw = fields.extra.get("host") or fields.host
    if not raw or not str(raw).strip():
        raise ConnectionConfigError(f"connection {fields.conn_id!r} has no host (set 'host' or extra 'host')")
    text = str(raw).strip()
    # Never echo a value that may carry credentials (https://user:token@host).
    shown = "(value not shown: it contains '@')" if "@" in text else repr(text)
    schema = (fields.schema or "https").lower()
    if schema not in ("http", "https"):
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field 'schema' is the URL scheme and must be 'http' or "
            f"'https', got {fields.schema!r}"
        )
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = schema, text
    if scheme.lower() not in ("http", "https"):
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field {name!r} must use http:// or https://, got {shown}"
        )
    try:
        parts = urlsplit(f"{scheme.lower()}://{rest}")
        in_host = parts.port
    except ValueError as exc:  # a port that is not a number, or an unbalanced [IPv6 literal
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field {name!r} is not a workspace URL ({shown}): {exc}"
        ) from exc
    if sep and scheme.lower() != schema:
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field {name!r} says {scheme.lower()}:// but field 'schema' "
            f"is {fields.schema or 'empty (https)'}; the provider's hook uses 'schema': set schema to "
            f"{scheme.lower()!r}"
        )
    # The hook drops the port of a URL, and appends 'port' to a bare host:port (making host:p:p):
    # so a port in host is only read alike with no 'port' beside a bare host, or the same one beside a URL.
    if in_host is not None and (in_host != fields.port if sep else fields.port is not None):
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field {name!r} carries port {in_host} and field 'port' is "
            f"{fields.port if fields.port is not None else 'empty'}; the provider's hook would call "
            f"another URL: set port to {in_host} and host to the bare host name"
        )
    port = in_host if in_host is not None else fields.port
    if parts.username is not None or parts.password is not None:
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field {name!r} must not carry credentials; put the token "
            "in the password field or extra 'token'"
        )
    hostname = parts.hostname or ""
    if not _is_hostname(hostname):
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field {name!r} has no valid host name ({shown}); expected "
            "e.g. 'adb-1234567890123456.7.azuredatabricks.net' or 'https://<workspace>.cloud.databricks.com'"
        )
    if port is not None and not 0 < int(port) < 65536:
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r}: field 'port' must be 1..65535, got {port!r}"
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme}://{netloc}{f':{port}' if port else ''}"


def _is_hostname(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        labels = hostname.rstrip(".").split(".")
        return 0 < len(hostname) <= 253 and all(_LABEL.match(label) for label in labels)
    return True


def config_kwargs(fields: ConnectionFields) -> dict[str, Any]:
    """The ``Config`` arguments for this connection, auth chosen as the provider would."""
    for name in _UNSUPPORTED_EXTRAS:
        if fields.extra.get(name):
            raise ConnectionConfigError(
                f"connection {fields.conn_id!r}: extra {name!r} is not supported by resumable-triggers; "
                "use a token, OAuth service principal (service_principal_oauth) or Azure service principal"
            )
    host = workspace_host(fields)
    extra, login, password = fields.extra, fields.login or "", fields.password or ""
    if extra.get("token"):
        return {"host": host, "token": extra["token"], "auth_type": "pat"}
    if password and not login:
        return {"host": host, "token": password, "auth_type": "pat"}
    if extra.get("service_principal_oauth"):
        _require(fields, login=login, password=password, what="service_principal_oauth")
        return {"host": host, "client_id": login, "client_secret": password, "auth_type": "oauth-m2m"}
    if extra.get("azure_tenant_id"):
        _require(fields, login=login, password=password, what="azure_tenant_id")
        return {
            "host": host,
            "azure_client_id": login,
            "azure_client_secret": password,
            "azure_tenant_id": extra["azure_tenant_id"],
            "auth_type": "azure-client-secret",
        }
    if extra.get("use_azure_managed_identity"):
        return {"host": host, "azure_use_msi": True, **({"azure_client_id": login} if login else {})}
    if login and password:
        return {"host": host, "username": login, "password": password, "auth_type": "basic"}
    if login:
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r} has a login but no password: set the password (a token, "
            "or the secret of the service principal named by login)"
        )
    return {"host": host}  # let the SDK resolve credentials from the environment or a profile


def _require(fields: ConnectionFields, *, login: str, password: str, what: str) -> None:
    missing = [name for name, value in (("login", login), ("password", password)) if not value]
    if missing:
        raise ConnectionConfigError(
            f"connection {fields.conn_id!r} sets extra {what!r} but has no {' or '.join(missing)} "
            "(login is the client id, password the client secret)"
        )


def sdk_config(fields: ConnectionFields) -> Callable[[], Config]:
    """A factory of the connection's ``Config``, its host discovery bounded by the connect budget."""
    kwargs = config_kwargs(fields)  # validate eagerly: a bad connection fails before any request
    return lambda: Config(**kwargs, **_sdk_timeouts())


def _sdk_timeouts() -> dict[str, Any]:
    # The SDK may start one more attempt just before its retry budget ends: leave room for it.
    settings = ClientSettings()
    attempt = min(settings.connect_timeout_seconds, settings.connect_budget_seconds)
    return {
        "retry_timeout_seconds": max(1, int(settings.connect_budget_seconds - attempt)),
        "http_timeout_seconds": attempt,
    }


def workspace_from_fields(
    fields: ConnectionFields, *, reread: Callable[[], Awaitable[ConnectionFields]] | None = None
) -> Workspace:
    """Map the connection; with ``reread``, rejected credentials make the headers re-read it."""
    host = workspace_host(fields)
    identity = f"conn:{fields.conn_id}"
    if reread is None:
        return Workspace(host=host, headers=SdkHeaderProvider(sdk_config(fields), identity=identity))
    return Workspace(host=host, headers=ConnectionHeaderProvider(fields, reread=reread))


class ConnectionHeaderProvider:
    """Headers for one Airflow connection that follow the connection when its credentials rotate.

    Serves the headers of the connection as last read. When the workspace rejects them (the client
    calls ``invalidate`` after a 401/403) the next caller re-reads the connection (one read however
    many callers were rejected) and rebuilds the SDK ``Config`` from it: a token rotated in Airflow
    is picked up by every running trigger, with no triggerer restart. A connection that now names
    another host, or cannot be mapped any more, is a permanent ``CredentialsError``: watches already
    running against the old host cannot move.
    """

    def __init__(
        self, fields: ConnectionFields, *, reread: Callable[[], Awaitable[ConnectionFields]]
    ) -> None:
        self._conn_id = fields.conn_id
        self._host = workspace_host(fields)
        self._identity = f"conn:{fields.conn_id}"
        self._inner = SdkHeaderProvider(sdk_config(fields), identity=self._identity)
        self._reread = reread
        self._served: Mapping[str, str] | None = None
        self._stale = False
        self._rereading: asyncio.Task[None] | None = None

    @property
    def identity(self) -> str:
        return self._identity

    def __repr__(self) -> str:
        return f"ConnectionHeaderProvider(identity={self._identity!r})"

    async def headers(self) -> Mapping[str, str]:
        if self._stale:
            task = self._rereading
            if task is None or task.get_loop() is not asyncio.get_running_loop():
                task = self._rereading = asyncio.ensure_future(self._do_reread())
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            await asyncio.shield(task)
        served = await self._inner.headers()
        self._served = served
        return served

    def invalidate(self, rejected: Mapping[str, str] | None = None) -> None:
        if rejected is not None and rejected is not self._served:
            return  # already replaced: a hundred pollers' 403s cost one re-read, not a hundred
        self._inner.invalidate(rejected)
        self._served = None
        self._stale = True

    async def _do_reread(self) -> None:
        try:
            fields = await self._reread()
            host = workspace_host(fields)
            if host != self._host:
                raise CredentialsError(
                    f"connection {self._conn_id!r} now names another workspace host ({host}, was "
                    f"{self._host}); runs watched on the old host keep failing there: retry the task",
                    identity=self._identity,
                )
            inner = SdkHeaderProvider(sdk_config(fields), identity=self._identity)
        except ConnectionConfigError as exc:
            raise CredentialsError(
                f"re-reading connection {self._conn_id!r} after the workspace rejected its credentials "
                f"failed: {exc}",
                identity=self._identity,
            ) from exc
        finally:
            self._rereading = None
        log.info("re-read connection %r after the workspace rejected its credentials", self._conn_id)
        self._inner, self._stale = inner, False


def default_workspace() -> Workspace:
    """No connection id: the SDK's own resolution (DATABRICKS_* environment, ~/.databrickscfg)."""

    def config() -> Config:
        return Config(**_sdk_timeouts())

    # The factory builds a new Config each time, so a rejected token is really re-minted after a 401.
    return Workspace(host=config().host, headers=SdkHeaderProvider(config, identity="sdk:default"))


def _fields(conn: Any) -> ConnectionFields:
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
    return ConnectionFields(
        conn_id=conn.conn_id,
        host=conn.host,
        schema=conn.schema,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        extra=extra or {},
    )


def workspace_for(conn_id: str | None) -> Workspace:
    """Worker side: look the connection up (a supervisor call) and map it. Each try reads it afresh."""
    from airflow.sdk import BaseHook

    if conn_id is None:
        return default_workspace()
    return workspace_from_fields(_fields(BaseHook.get_connection(conn_id)))


async def _aread_fields(conn_id: str) -> ConnectionFields:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return _fields(await BaseHook.aget_connection(conn_id))
    except AirflowNotFoundException as exc:
        raise ConnectionConfigError(f"connection {conn_id!r} is not defined any more") from exc


# Per event loop (weakly: a finished loop's entries go with it, and a new loop never sees them).
_async_cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, Workspace]] = (
    weakref.WeakKeyDictionary()
)


async def aworkspace_for(conn_id: str | None) -> Workspace:
    """Triggerer side: one lookup per connection per event loop, however many triggers use it.

    A restart with thousands of triggers would otherwise ask the supervisor for the same connection
    thousands of times, and build as many SDK configs. Rejected credentials re-read the connection
    (see ``ConnectionHeaderProvider``), so the cache never outlives a token rotation.
    """
    cache = _async_cache.setdefault(asyncio.get_running_loop(), {})
    if (cached := cache.get(conn_id)) is not None:
        return cached
    if conn_id is None:
        workspace = await asyncio.to_thread(default_workspace)  # Config() may do network I/O
    else:
        workspace = workspace_from_fields(await _aread_fields(conn_id), reread=lambda: _aread_fields(conn_id))
    return cache.setdefault(conn_id, workspace)

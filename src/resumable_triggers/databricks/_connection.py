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
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from databricks.sdk.config import Config

from resumable_triggers.databricks.client import SdkHeaderProvider

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
    headers: SdkHeaderProvider


def workspace_host(fields: ConnectionFields) -> str:
    raw = fields.extra.get("host") or fields.host
    if not raw:
        raise ConnectionConfigError(f"connection {fields.conn_id!r} has no host (set 'host' or extra 'host')")
    raw = str(raw).strip().rstrip("/")
    if "://" not in raw:
        raw = f"{fields.schema or 'https'}://{raw}"
    parts = urlsplit(raw)
    if not parts.hostname:
        raise ConnectionConfigError(f"connection {fields.conn_id!r} has an invalid host {raw!r}")
    port = parts.port or fields.port
    return f"{parts.scheme}://{parts.hostname}{f':{port}' if port else ''}"


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


def workspace_from_fields(fields: ConnectionFields) -> Workspace:
    kwargs = config_kwargs(fields)  # validate eagerly: a bad connection fails before any request
    return Workspace(
        host=workspace_host(fields),
        headers=SdkHeaderProvider(lambda: Config(**kwargs), identity=f"conn:{fields.conn_id}"),
    )


def default_workspace() -> Workspace:
    """No connection id: the SDK's own resolution (DATABRICKS_* environment, ~/.databrickscfg)."""
    # The factory builds a new Config each time, so a rejected token is really re-minted after a 401.
    return Workspace(host=Config().host, headers=SdkHeaderProvider(Config, identity="sdk:default"))


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
    """Worker side: look the connection up (a supervisor call) and map it."""
    from airflow.sdk import BaseHook

    if conn_id is None:
        return default_workspace()
    return workspace_from_fields(_fields(BaseHook.get_connection(conn_id)))


# Per event loop (weakly: a finished loop's entries go with it, and a new loop never sees them).
_async_cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, Workspace]] = (
    weakref.WeakKeyDictionary()
)


async def aworkspace_for(conn_id: str | None) -> Workspace:
    """Triggerer side: one lookup per connection per event loop, however many triggers use it.

    A restart with thousands of triggers would otherwise ask the supervisor for the same connection
    thousands of times, and build as many SDK configs.
    """
    from airflow.sdk import BaseHook

    cache = _async_cache.setdefault(asyncio.get_running_loop(), {})
    if (cached := cache.get(conn_id)) is not None:
        return cached
    if conn_id is None:
        workspace = await asyncio.to_thread(default_workspace)  # Config() may do network I/O
    else:
        workspace = workspace_from_fields(_fields(await BaseHook.aget_connection(conn_id)))
    return cache.setdefault(conn_id, workspace)

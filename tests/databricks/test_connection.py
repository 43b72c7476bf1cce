"""A user's existing Airflow Databricks connection maps onto databricks-sdk Config arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resumable_triggers.databricks import ConnectionConfigError
from resumable_triggers.databricks._connection import ConnectionFields, config_kwargs, workspace_from_fields
from resumable_triggers.testing import airflow_connection


def fields(**kwargs: Any) -> ConnectionFields:
    return ConnectionFields(conn_id="databricks_default", **kwargs)


@pytest.mark.parametrize(
    ("conn", "host"),
    [
        ({"host": "adb-1.azuredatabricks.net"}, "https://adb-1.azuredatabricks.net"),
        ({"host": "https://adb-1.azuredatabricks.net/"}, "https://adb-1.azuredatabricks.net"),
        ({"host": "127.0.0.1", "schema": "http", "port": 8080}, "http://127.0.0.1:8080"),
        (
            {"host": "ignored", "extra": {"host": "https://x.cloud.databricks.com"}},
            "https://x.cloud.databricks.com",
        ),
    ],
)
def test_host_is_built_like_the_provider_builds_it(conn: dict[str, Any], host: str) -> None:
    """Host from extra.host or host; scheme from schema (https by default); port from port."""
    assert host == config_kwargs(fields(password="t", **conn))["host"]


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        (
            {"extra": {"token": "dapi1"}, "login": "u", "password": "p"},
            {"token": "dapi1", "auth_type": "pat"},
        ),
        ({"password": "dapi2"}, {"token": "dapi2", "auth_type": "pat"}),
        (
            {"login": "client", "password": "secret", "extra": {"service_principal_oauth": True}},
            {"client_id": "client", "client_secret": "secret", "auth_type": "oauth-m2m"},
        ),
        (
            {"login": "app", "password": "secret", "extra": {"azure_tenant_id": "tenant"}},
            {
                "azure_client_id": "app",
                "azure_client_secret": "secret",
                "azure_tenant_id": "tenant",
                "auth_type": "azure-client-secret",
            },
        ),
        ({"extra": {"use_azure_managed_identity": True}}, {"azure_use_msi": True}),
        ({"login": "me", "password": "pw"}, {"username": "me", "password": "pw", "auth_type": "basic"}),
        ({}, {}),
    ],
)
def test_auth_is_chosen_in_the_providers_order(conn: dict[str, Any], expected: dict[str, Any]) -> None:
    """Token, password-as-PAT, OAuth service principal, Azure, managed identity, basic, SDK default."""
    kwargs = config_kwargs(fields(host="h.cloud.databricks.com", **conn))
    assert {"host": "https://h.cloud.databricks.com", **expected} == kwargs


@pytest.mark.parametrize(
    ("conn", "field"),
    [
        ({}, "host"),
        ({"host": "h", "login": "client", "extra": {"service_principal_oauth": True}}, "password"),
        ({"host": "h", "login": "only-login"}, "password"),
        ({"host": "h", "password": "p", "extra": {"federated_k8s": True}}, "federated_k8s"),
    ],
)
def test_unusable_connection_gets_a_message_naming_the_field(conn: dict[str, Any], field: str) -> None:
    """A connection we cannot map fails early and says which field to fix."""
    with pytest.raises(ConnectionConfigError, match=field):
        config_kwargs(fields(**conn))


def test_workspace_repr_never_shows_the_secret() -> None:
    """The mapped workspace is safe to log: no token in its repr."""
    workspace = workspace_from_fields(fields(host="h", password="dapi-very-secret"))
    assert "dapi-very-secret" not in repr(workspace)
    assert "dapi-very-secret" not in repr(fields(host="h", password="dapi-very-secret"))


@pytest.mark.parametrize(
    ("conn", "field"),
    [
        ({"host": "https://"}, "'host'"),
        ({"host": "http://"}, "'host'"),
        ({"host": "not a host!!"}, "'host'"),
        ({"host": "https://not a host!!"}, "'host'"),
        ({"host": "ftp://h.cloud.databricks.com"}, "'host'"),
        ({"host": "h.cloud.databricks.com:notaport"}, "'host'"),
        ({"host": "-bad-.cloud.databricks.com"}, "'host'"),
        ({"host": "h.cloud.databricks.com", "schema": "databricks"}, "'schema'"),
        ({"host": "h.cloud.databricks.com", "port": 70000}, "'port'"),
        ({"host": "ok", "extra": {"host": "https://"}}, "'extra.host'"),
    ],
)
def test_a_host_that_is_not_a_host_is_a_configuration_error_naming_the_field(
    conn: dict[str, Any], field: str
) -> None:
    """Scheme-only values, spaces and punctuation, other schemes, bad ports: each fails naming the
    connection field to fix, instead of becoming a URL such as ``https://https``."""
    with pytest.raises(ConnectionConfigError, match=field):
        config_kwargs(fields(password="t", **conn))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("https://adb-1.7.azuredatabricks.net/?o=1#job/2", "https://adb-1.7.azuredatabricks.net"),
        ("HTTPS://h.cloud.databricks.com", "https://h.cloud.databricks.com"),
        ("[::1]:8080", "https://[::1]:8080"),
        ("10.0.0.7", "https://10.0.0.7"),
    ],
)
def test_real_hosts_survive_strict_parsing(host: str, expected: str) -> None:
    """A URL pasted from the browser (path, query, fragment), upper-case schemes and IP literals map."""
    assert expected == config_kwargs(fields(host=host, password="t"))["host"]


def test_credentials_in_the_host_are_refused_without_echoing_them() -> None:
    """``https://user:secret@host`` is refused; the message never repeats the secret."""
    with pytest.raises(ConnectionConfigError, match="credentials") as refused:
        config_kwargs(fields(host="https://me:dapi-secret@h.cloud.databricks.com", password="t"))
    assert "dapi-secret" not in str(refused.value)


def _provider_url(conn: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """The workspace URL the Databricks provider's own hook calls for this connection."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    monkeypatch.setenv("AIRFLOW_CONN_RULE_PROBE", json.dumps({"conn_type": "databricks", **conn}))
    return DatabricksHook(databricks_conn_id="rule_probe")._endpoint_url("api").removesuffix("/api")


def _our_url(conn: dict[str, Any]) -> str:
    return config_kwargs(ConnectionFields(conn_id="rule_probe", password="t", **conn))["host"]


@pytest.mark.parametrize(
    "conn",
    [
        json.loads(airflow_connection("http://127.0.0.1:8080", "t")),
        {"host": "https://adb-1.azuredatabricks.net/"},
        {"host": "h.cloud.databricks.com:8443"},
        {"host": "http://127.0.0.1:8080", "schema": "http", "port": 8080},
        {"host": "ignored", "extra": {"host": "https://x.cloud.databricks.com"}},
    ],
    ids=["airflow_connection", "url", "bare-with-port", "url-agreeing-with-fields", "extra-host"],
)
def test_a_connection_means_the_same_url_to_the_provider_hook_and_to_us(
    conn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for host, scheme and port, the provider hook's: what testing.airflow_connection writes
    for the emulator, and what users keep for the provider, reach the same URL through both readers."""
    conn = {key: value for key, value in conn.items() if key not in ("conn_type", "password")}
    assert _provider_url(conn, monkeypatch) == _our_url(conn)


@pytest.mark.parametrize(
    ("conn", "written", "field"),
    [
        ({"host": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080", "schema"),
        ({"host": "https://h.cloud.databricks.com:8443"}, "https://h.cloud.databricks.com:8443", "port"),
        (
            {"host": "h.cloud.databricks.com:8443", "port": 8443},
            "https://h.cloud.databricks.com:8443",
            "port",
        ),
        (
            {"host": "https://h.cloud.databricks.com", "schema": "http"},
            "https://h.cloud.databricks.com",
            "schema",
        ),
    ],
)
def test_a_scheme_or_port_in_host_that_the_provider_hook_would_not_call_is_refused(
    conn: dict[str, Any], written: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's hook ignores a URL's scheme and port (and appends port to a bare host:port): a
    connection it would read as another URL than the one written is refused, naming the field to set,
    instead of each reader calling a different workspace URL."""
    assert written != _provider_url(conn, monkeypatch)
    with pytest.raises(ConnectionConfigError, match=f"set {field} to"):
        _our_url(conn)

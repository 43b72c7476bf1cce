"""The Airflow Databricks provider's connection for an emulator (no Airflow import needed)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit


def airflow_connection(url: str, token: str) -> str:
    """The provider's ``databricks`` connection, as JSON for ``AIRFLOW_CONN_<ID>``, pointing at ``url``.

    One rule for host, scheme and port, the provider hook's, which resumable-triggers' operators
    follow too (``databricks._connection.workspace_host``): the URL is
    ``{schema or "https"}://{host}:{port}``, so ``host`` is the bare host name, ``schema`` carries
    ``http`` and ``port`` the port. A password without a login is used as a bearer token.
    """
    parts = urlsplit(url)
    return json.dumps(
        {
            "conn_type": "databricks",
            "host": parts.hostname,
            "port": parts.port,
            "schema": parts.scheme,
            "password": token,
        }
    )

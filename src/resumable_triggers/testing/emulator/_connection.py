"""The Airflow Databricks provider's connection for an emulator (no Airflow import needed)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit


def airflow_connection(url: str, token: str) -> str:
    """The provider's ``databricks`` connection, as JSON for ``AIRFLOW_CONN_<ID>``, pointing at ``url``.

    The hook builds ``{schema or "https"}://{host}:{port}/api/...``: the host must be bare (a URL in
    ``host`` loses its scheme and port), ``schema`` carries ``http``, and a password without a login
    is used as a bearer token.
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

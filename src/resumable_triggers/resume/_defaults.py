"""What a resumable operator does when its DAG does not say: read from Airflow's configuration."""

from __future__ import annotations

import os

from airflow.sdk import conf

__all__ = ["default_deferrable"]


def default_deferrable() -> bool:
    """True, unless the deployment chose otherwise in ``[operators] default_deferrable``.

    Airflow writes every default into the ``airflow.cfg`` it generates (``default_deferrable = false``
    included), so a file value equal to Airflow's own default is no choice: the setting counts when it
    comes from the environment (``AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE``, or its ``_CMD``/``_SECRET``
    forms), or when the file's value differs from Airflow's default.
    """
    variable = "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"
    configured = conf.getboolean("operators", "default_deferrable", fallback=True)
    if any(name in os.environ for name in (variable, f"{variable}_CMD", f"{variable}_SECRET")):
        return configured
    airflow_default = str(conf.get_default_value("operators", "default_deferrable", fallback="false"))
    return configured if configured != (airflow_default.lower() == "true") else True

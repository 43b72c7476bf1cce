"""What the provider adds to a request beyond the named fields, added the same way::

    runs/submit  params (not None) ─────────────► each task's dict-shaped parameter slot, if it is empty
                 openlineage_inject_parent_job_info ► OPENLINEAGE_CONTEXT in those slots, and the
                                                      parent job in each new_cluster's spark_conf
                 openlineage_inject_transport_info ─► the transport in each new_cluster's spark_conf
    run-now      params (not None) ─────────────► job_parameters, if forward_dag_params and neither
                                                  job_parameters nor a legacy parameter slot is set
                 openlineage_inject_parent_job_info ► OPENLINEAGE_CONTEXT in job_parameters (not with
                                                      a legacy slot: the API refuses the mix)

The params functions are pure. The OpenLineage ones call the provider's own helpers: what they inject
(parent run ids, transport configuration) is built by the OpenLineage provider, and a copy here would
drift from what the provider sends. Without the OpenLineage provider those helpers log a warning and
change nothing, as they do under the provider's operators; so do these without the Databricks provider.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

# The dict-shaped parameter slot of each task type (runs/submit); list-shaped slots (spark_jar_task,
# spark_python_task, spark_submit_task) have no mapping from key/value params, so the provider skips them.
TASK_PARAMETER_SLOTS: Mapping[str, str] = {
    "notebook_task": "base_parameters",
    "python_wheel_task": "named_parameters",
    "sql_task": "parameters",
    "run_job_task": "job_parameters",
}
# run-now fields that Databricks refuses in the same request as job_parameters.
LEGACY_RUN_NOW_SLOTS = (
    "notebook_params",
    "python_params",
    "jar_params",
    "spark_submit_params",
    "python_named_params",
    "dbt_commands",
)


def forwardable(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params worth sending: ``dict()`` resolves each Param to its value; None has no API slot."""
    return {key: value for key, value in dict(params).items() if value is not None}


def forward_into_tasks(body: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A runs/submit body whose tasks' empty dict-shaped slots hold ``params``.

    The provider normalises its submit body last, so the params it forwards arrive with numbers as
    strings (``3`` -> ``"3"``) and booleans as they are; they are sent the same way here.
    """
    forwarded = forwardable(params)
    result = copy.deepcopy(dict(body))
    if not forwarded:
        return result
    for task in result.get("tasks") or ():
        for task_type, slot in TASK_PARAMETER_SLOTS.items():
            definition = task.get(task_type) if isinstance(task, dict) else None
            if isinstance(definition, dict) and not definition.get(slot):
                definition[slot] = {key: _as_provider_sends(value) for key, value in forwarded.items()}
    return result


def forward_as_job_parameters(body: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A run-now body with ``params`` as its job_parameters, unless parameters are set otherwise.

    Unlike its submit body, the provider forwards these after normalising, so values go as they are.
    """
    result = dict(body)
    if result.get("job_parameters") or any(slot in result for slot in LEGACY_RUN_NOW_SLOTS):
        return result
    if forwarded := forwardable(params):
        result["job_parameters"] = forwarded
    return result


def inject_lineage_into_submit(
    body: Mapping[str, Any], context: Context, *, parent_job_info: bool, transport_info: bool
) -> dict[str, Any]:
    """The provider's ``_inject_openlineage_properties_into_databricks_job`` on a submit body."""
    result = dict(body)
    if not (parent_job_info or transport_info):
        return result
    helpers = _provider_helpers()
    if helpers is None:
        return result
    if parent_job_info:
        result = copy.deepcopy(result)
        for task in result.get("tasks") or ():
            for task_type, slot in TASK_PARAMETER_SLOTS.items():
                definition = task.get(task_type) if isinstance(task, dict) else None
                if isinstance(definition, dict):
                    definition[slot] = helpers.inject_openlineage_context_into_databricks_job_parameters(
                        job_parameters=definition.get(slot) or {}, context=context
                    )
    return dict(
        helpers.inject_openlineage_properties_into_databricks_job(
            job=result,
            context=context,
            inject_parent_job_info=parent_job_info,
            inject_transport_info=transport_info,
        )
    )


def inject_lineage_into_run_now(body: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """The provider's run-now injection: OPENLINEAGE_CONTEXT joins job_parameters."""
    result = dict(body)
    if any(slot in result for slot in LEGACY_RUN_NOW_SLOTS):
        log.info("OpenLineage parent job information is not injected: a legacy parameter slot is set")
        return result
    helpers = _provider_helpers()
    if helpers is None:
        return result
    result["job_parameters"] = helpers.inject_openlineage_context_into_databricks_job_parameters(
        job_parameters=result.get("job_parameters", {}), context=context
    )
    return result


def _provider_helpers() -> Any:
    try:
        from airflow.providers.databricks.utils import openlineage
    except ImportError:
        log.warning(
            "OpenLineage injection is on, but apache-airflow-providers-databricks (whose helpers build "
            "what is injected) is not installed; the request is sent unchanged"
        )
        return None
    return openlineage


def _as_provider_sends(value: Any) -> Any:
    # The provider's normalise_json_content: numbers become strings, booleans and strings stay.
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return [_as_provider_sends(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _as_provider_sends(item) for key, item in value.items()}
    return value

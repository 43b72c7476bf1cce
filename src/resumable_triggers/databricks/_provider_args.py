"""Every argument of the provider's operators that we mirror, and what it does here.

One table per mirrored operator, keyed by the provider's argument name (BaseOperator's own arguments
are Airflow's, taken as they are, and not listed)::

    provider argument ─┬─► SUPPORTED  same meaning, and the same request as the provider sends
                       ├─► IGNORED    accepted so that switching stays an import change; a UserWarning
                       │              says it has no effect, and why
                       └─► REJECTED   raises ProviderArgumentRejected in ``__init__`` (at DAG parse)
                                      unless left at one of its ``accepted`` values, with a message
                                      naming the argument, why, and what to use instead

The provider's operators that have no counterpart here yet are listed in ``NOT_PROVIDED``. A test
builds the provider's argument sets from its classes (``inspect.signature`` through the MRO) and fails
on any argument this table does not account for; another checks docs/provider-arguments.md against
``markdown()``, so the page cannot drift from the code.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Status(str, enum.Enum):
    SUPPORTED = "supported"
    IGNORED = "accepted, no effect"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ProviderArgument:
    """One provider argument. ``note``: what it does here (SUPPORTED, IGNORED), or why it is refused
    and what to use instead (REJECTED). ``accepted``: the values a REJECTED argument may still have
    (the provider's defaults, which ask for nothing this library lacks)."""

    name: str
    status: Status
    note: str
    accepted: tuple[Any, ...] = ()


class ProviderArgumentRejected(ValueError):
    """A provider argument was given a value this library refuses; raised at DAG parse."""

    def __init__(self, operator: str, argument: ProviderArgument, value: Any) -> None:
        super().__init__(f"{operator}: {argument.name}={value!r} is not supported: {argument.note}")
        self.operator = operator
        self.argument = argument.name
        self.value = value


def _table(*arguments: ProviderArgument) -> Mapping[str, ProviderArgument]:
    return {argument.name: argument for argument in arguments}


def _same(names: str, note: str) -> tuple[ProviderArgument, ...]:
    return tuple(ProviderArgument(name, Status.SUPPORTED, note) for name in names.split())


_RETRY = (
    "requests are retried within a time budget (honouring Retry-After) and the trigger absorbs "
    "errors within error_budget_seconds"
)
# The arguments every mirrored operator shares with its provider counterpart.
_COMMON = (
    *_same("databricks_conn_id", "the provider's connection format (templated)"),
    *_same("polling_period_seconds", "seconds between status reads, in the triggerer or the worker"),
    *_same(
        "deferrable",
        "True by default (unless [operators] default_deferrable says otherwise); False polls in the "
        "worker under the same resume rules",
    ),
    *(
        ProviderArgument(name, Status.IGNORED, _RETRY)
        for name in ("databricks_retry_limit", "databricks_retry_delay", "databricks_retry_args")
    ),
    ProviderArgument(
        "wait_for_termination",
        Status.REJECTED,
        "a resumable operator exists to wait for its run; use the provider's operator for "
        "fire-and-forget submissions",
        accepted=(True,),
    ),
)
# What the provider's submit-run and run-now operators add.
_SHARED = (
    *_COMMON,
    *_same("json", "merged with the named fields; the named fields win, as in the provider"),
    *_same("do_xcom_push", "pushes run_id and run_page_url, the provider's keys"),
    *_same(
        "idempotency_token",
        "salts the tokens derived per clear cycle and generation instead of being sent verbatim: a "
        "verbatim token would hand every retry the first, possibly failed, run back",
    ),
    *_same(
        "performance_target",
        "sent as the request's performance_target (templated); like the API, no check of its value",
    ),
    ProviderArgument(
        "durable",
        Status.REJECTED,
        "this operator is always durable: a retry reconnects to the run its earlier try recorded (a "
        "failed run is resubmitted, never adopted); use the provider's operator to start a fresh run "
        "on every retry",
        accepted=(None, True),
    ),
)
_LINEAGE_ABSENT = "without the OpenLineage provider, a warning and nothing injected, as under the provider"

SUBMIT_RUN = _table(
    *_SHARED,
    *_same(
        "tasks spark_jar_task notebook_task spark_python_task spark_submit_task dbt_task",
        "validated before any API call; a single top-level task moves into tasks, with task_key = "
        "the task id",
    ),
    *_same(
        "pipeline_task",
        "as the other task types, with one gap: a pipeline_name is not resolved to its pipeline_id "
        "(the provider looks it up); give pipeline_id",
    ),
    *_same("new_cluster existing_cluster_id libraries", "moved into the top-level task with it"),
    *_same("environments run_name timeout_seconds access_control_list git_source", "sent as given"),
    *_same(
        "openlineage_inject_parent_job_info",
        "parent job information in each task's dict-shaped parameters and each new_cluster's "
        f"spark_conf, through the provider's own helpers; {_LINEAGE_ABSENT}",
    ),
    *_same(
        "openlineage_inject_transport_info",
        "transport configuration in each new_cluster's spark_conf, through the provider's helpers; "
        f"{_LINEAGE_ABSENT}",
    ),
)

RUN_NOW = _table(
    *_SHARED,
    *_same("job_id job_name", "exactly one; a job_name is resolved to its id at submit time"),
    *_same(
        "job_parameters notebook_params python_params python_named_params jar_params "
        "spark_submit_params dbt_commands",
        "sent with run-now",
    ),
    *_same(
        "cancel_previous_runs",
        "runs/cancel-all of the job before a submit with a new token; never before a retry that "
        "reconnects to, or resubmits the stored token of, the run it is about to adopt",
    ),
    *_same(
        "forward_dag_params",
        "the task's params (those not None) become job_parameters when neither job_parameters nor a "
        "legacy parameter slot is set, as in the provider",
    ),
    *_same(
        "openlineage_inject_parent_job_info",
        "OPENLINEAGE_CONTEXT in job_parameters (skipped with a legacy parameter slot), through the "
        f"provider's own helper; {_LINEAGE_ABSENT}",
    ),
    *_same(
        "repair_run",
        "a failed run is repaired in place (runs/repair of every failed task, with the job_parameters "
        "sent), at most max_repairs times (default 1, as the provider) per logical attempt, each repair "
        "exactly once: crash-safe, and the latest_repair_id check stops two tries from both repairing. "
        "A run a person cancelled is not repaired",
    ),
    *_same(
        "databricks_repair_reason_new_settings",
        "when given, only a failure whose state message contains one of its reasons is repaired, after "
        "jobs/update with that reason's settings, as in the provider",
    ),
)

# The provider's one-task operators (DatabricksTaskBaseOperator's arguments), standalone.
_ONE_TASK = (
    *_COMMON,
    *_same(
        "new_cluster existing_cluster_id",
        "the task's cluster: exactly one, checked at DAG parse (the provider checks when the task runs)",
    ),
    *_same(
        "databricks_task_key",
        "the task's task_key and the run_name; empty or over 100 characters, the md5 of "
        "dag_id__task_id, as in the provider",
    ),
    *_same(
        "max_retries min_retry_interval_millis retry_on_timeout",
        "Databricks' own task retries (templated), inside the one run, whose end accounts for them; "
        "once one is set the task is sent in tasks with its task_key, as the provider sends it",
    ),
    ProviderArgument(
        "job_cluster_key",
        Status.IGNORED,
        "job clusters exist only in a DatabricksWorkflowTaskGroup's job, which these operators do not "
        "join (the provider's standalone path drops it too); give new_cluster or existing_cluster_id",
    ),
    ProviderArgument(
        "caller",
        Status.IGNORED,
        "the provider hook's label in its logs and User-Agent; our client sends a User-Agent of its own",
    ),
    ProviderArgument(
        "workflow_run_metadata",
        Status.REJECTED,
        "it attaches the task to a DatabricksWorkflowTaskGroup's job run, which a resumable operator "
        "does not join (it submits and records a run of its own); inside a workflow, use the "
        "provider's operator",
        accepted=(None,),
    ),
)

NOTEBOOK = _table(
    *_ONE_TASK,
    *_same("notebook_path source", "the notebook_task's, sent as given"),
    *_same(
        "notebook_params",
        "the notebook_task's base_parameters (templated); the task's params are not forwarded, as in "
        "the provider",
    ),
    *_same("notebook_packages", "the task's libraries"),
)

TASK = _table(
    *_ONE_TASK,
    *_same(
        "task_config",
        "the Jobs API task object (templated), sent with the cluster as given; validated before any "
        "API call; its retry fields are overridden by the named ones",
    ),
)

ARGUMENTS: Mapping[str, Mapping[str, ProviderArgument]] = {
    "DatabricksSubmitRunOperator": SUBMIT_RUN,
    "DatabricksRunNowOperator": RUN_NOW,
    "DatabricksNotebookOperator": NOTEBOOK,
    "DatabricksTaskOperator": TASK,
}

# The provider's other operators (apache-airflow-providers-databricks 7.23): not mirrored yet.
NOT_PROVIDED = (
    "DatabricksCopyIntoAssetOperator",
    "DatabricksCopyIntoOperator",
    "DatabricksCreateJobsOperator",
    "DatabricksReposCreateOperator",
    "DatabricksReposDeleteOperator",
    "DatabricksReposUpdateOperator",
    "DatabricksSQLStatementsOperator",
    "DatabricksSqlOperator",
    "DatabricksStartWarehouseOperator",
    "DatabricksStopWarehouseOperator",
)


def check_arguments(operator: str, values: Mapping[str, Any]) -> None:
    """Refuse REJECTED arguments set to anything but an accepted value; warn about IGNORED ones given
    a value. ``values``: the provider arguments as passed (None for those left out)."""
    table = ARGUMENTS[operator]
    for name, value in values.items():
        argument = table[name]
        if argument.status is Status.REJECTED and not any(_same_value(value, ok) for ok in argument.accepted):
            raise ProviderArgumentRejected(operator, argument, value)
    ignored: dict[str, list[str]] = {}
    for name in sorted(values):
        if table[name].status is Status.IGNORED and values[name] is not None:
            ignored.setdefault(table[name].note, []).append(name)
    for note, names in ignored.items():
        # Accepted so that switching from the provider is an import change, but said out loud.
        warnings.warn(f"{', '.join(names)} has no effect: {note}", UserWarning, stacklevel=3)


def _same_value(value: Any, accepted: Any) -> bool:
    # ``True == 1`` in Python: wait_for_termination=1 is not the True the table accepts.
    return type(value) is type(accepted) and value == accepted


def markdown() -> str:
    """The tables of docs/provider-arguments.md, one per mirrored operator, then the others."""
    lines: list[str] = []
    for operator, table in ARGUMENTS.items():
        lines += [f"### `{operator}`", "", "| provider argument | here | notes |", "|---|---|---|"]
        for argument in sorted(table.values(), key=lambda a: (list(Status).index(a.status), a.name)):
            status = argument.status.value
            if argument.status is Status.REJECTED:
                status += " unless " + " or ".join(f"`{value!r}`" for value in argument.accepted)
            lines.append(f"| `{argument.name}` | {status} | {argument.note} |")
        lines.append("")
    lines += ["### Not yet provided", "", "Use the provider's operator for these, for now:", ""]
    lines += [f"- `{operator}`" for operator in NOT_PROVIDED]
    return "\n".join(lines) + "\n"

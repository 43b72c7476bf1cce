"""The provider's one-task operators, ``DatabricksNotebookOperator`` and ``DatabricksTaskOperator``.

Standalone, the provider's operators send one ``runs/submit`` per try, with no idempotency token; ours
send the very same body, built the same way, through the resume machinery (one run per logical
attempt, a retry reconnects to it)::

    notebook_path, source,          ─► task base ─┐
    notebook_params, notebook_packages            │   no task retry field set:
    execution_timeout  (or task_config)           ├─►   {run_name, **task base, **cluster}
                                                  │   any of max_retries, min_retry_interval_millis,
    new_cluster | existing_cluster_id ─► cluster ─┤   retry_on_timeout set (here or in task_config):
    databricks_task_key (md5 of dag_id__task_id) ─┘     {run_name, tasks: [{**task base, task_key,
                                                                             **retry fields, **cluster}]}

``run_name`` is the task key in both shapes, as in the provider. Databricks' own task retries happen
inside the one run, whose terminal state already accounts for them, so the run is watched as a whole
(the provider's standalone monitoring does the same).

Inside a provider ``DatabricksWorkflowTaskGroup`` the provider's operators do not submit at all: they
attach to the job run the group launches. These operators refuse to be built there (at DAG parse,
``InsideDatabricksWorkflowError``) rather than submit a second, unrelated run beside the workflow's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from resumable_triggers.databricks import _provider_args, _spec
from resumable_triggers.databricks._operators import _DatabricksRunOperator
from resumable_triggers.resume import ExternalId

if TYPE_CHECKING:
    from airflow.sdk import Context

# Longer keys are truncated by the API, and the provider then derives one instead.
_MAX_TASK_KEY = 100
_RETRY_FIELDS = ("max_retries", "min_retry_interval_millis", "retry_on_timeout")


class InsideDatabricksWorkflowError(ValueError):
    """A resumable one-task operator was placed inside a provider ``DatabricksWorkflowTaskGroup``."""

    def __init__(self, operator: str, task_id: str, group_id: str | None) -> None:
        super().__init__(
            f"{operator} {task_id!r} is inside the DatabricksWorkflowTaskGroup {group_id!r}, which "
            "runs its tasks as one Databricks job: a resumable operator submits a run of its own and "
            "cannot join that job. Inside a workflow, use the provider's "
            f"airflow.providers.databricks.operators.databricks.{operator}; outside one, this operator."
        )
        self.operator = operator
        self.task_id = task_id
        self.group_id = group_id


class _DatabricksOneTaskOperator(_DatabricksRunOperator):
    """The cluster, the task key, the task's retry fields and the submit; subclasses give the task."""

    def __init__(
        self,
        *,
        databricks_task_key: str = "",
        existing_cluster_id: str = "",
        job_cluster_key: str = "",
        new_cluster: dict[str, Any] | None = None,
        wait_for_termination: bool = True,
        workflow_run_metadata: dict[str, Any] | None = None,
        max_retries: int | str | None = None,
        min_retry_interval_millis: int | str | None = None,
        retry_on_timeout: bool | str | None = None,
        caller: str | None = None,
        databricks_retry_limit: int | None = None,
        databricks_retry_delay: float | None = None,
        databricks_retry_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        group = _workflow_task_group(self)
        if group is not None:
            raise InsideDatabricksWorkflowError(self.provider_operator, self.task_id, group.group_id)
        _provider_args.check_arguments(
            self.provider_operator,
            {
                "wait_for_termination": wait_for_termination,
                "workflow_run_metadata": workflow_run_metadata,
                # The provider's defaults are "" and a label: only a value of the user's is warned about.
                "job_cluster_key": job_cluster_key or None,
                "caller": caller,
                "databricks_retry_limit": databricks_retry_limit,
                "databricks_retry_delay": databricks_retry_delay,
                "databricks_retry_args": databricks_retry_args,
            },
        )
        # The provider only finds these out when the task runs; neither is templated, so say it now.
        if new_cluster and existing_cluster_id:
            raise _spec.InvalidSpecError(
                "new_cluster", "cannot be combined with existing_cluster_id; set only one"
            )
        if not (new_cluster or existing_cluster_id):
            raise _spec.InvalidSpecError(
                "existing_cluster_id",
                "set existing_cluster_id or new_cluster (job_cluster_key only exists inside a workflow)",
            )
        self.databricks_task_key = databricks_task_key
        self.existing_cluster_id = existing_cluster_id
        self.job_cluster_key = job_cluster_key
        self.new_cluster = new_cluster or {}
        self.workflow_run_metadata = workflow_run_metadata
        self.max_retries = max_retries
        self.min_retry_interval_millis = min_retry_interval_millis
        self.retry_on_timeout = retry_on_timeout
        self._body: dict[str, Any] = {}

    def task_base(self) -> dict[str, Any]:
        """The task's own part of the body (what the provider calls its task base json)."""
        raise NotImplementedError

    def _convert_to_databricks_workflow_task(self, *args: Any, **kwargs: Any) -> dict[str, object]:
        # The provider's workflow group calls this to fold a task into its job. Being callable keeps
        # the group's own exit from replacing the error __init__ raised with a vaguer one ("does not
        # support conversion"); a task added to the group after construction fails here instead.
        group = _workflow_task_group(self)
        raise InsideDatabricksWorkflowError(
            self.provider_operator, self.task_id, None if group is None else group.group_id
        )

    def task_key(self) -> str:
        """The given ``databricks_task_key``, or the provider's md5 of ``dag_id__task_id`` when it is
        empty or longer than the API keeps."""
        key = self.databricks_task_key
        if not key or len(key) > _MAX_TASK_KEY:
            key = hashlib.md5(
                f"{self.dag_id}__{self.task_id}".encode()
            ).hexdigest()  # a name, not a secret: the provider's own derivation
        return key

    def validate_job(self) -> None:
        base = self.task_base()
        cluster: dict[str, Any] = (
            {"new_cluster": self.new_cluster}
            if self.new_cluster
            else {"existing_cluster_id": self.existing_cluster_id}
        )
        key = self.task_key()
        retry = self._retry_settings()
        if retry or any(base.get(name) is not None for name in _RETRY_FIELDS):
            # Retry fields are per-task fields of the API: the provider then submits the task listed.
            body: dict[str, Any] = {"run_name": key, "tasks": [{**base, "task_key": key, **retry, **cluster}]}
        else:
            body = {"run_name": key, **base, **cluster}
        # Validated in the API 2.2 shape, sent in the provider's: the same fields either way.
        _spec.normalise_submit(body, default_task_key=key)
        self._body = body

    async def submit_job(self, token: str, context: Context) -> ExternalId:
        async with self._client() as client:
            return await client.submit_run(self._body, idempotency_token=token)

    def _retry_settings(self) -> dict[str, Any]:
        """The task retry fields that were set, converted as the provider converts them (templated
        values arrive as strings)."""
        settings: dict[str, Any] = {}
        for name in ("max_retries", "min_retry_interval_millis"):
            value = getattr(self, name)
            if value is not None:
                try:
                    settings[name] = int(value)
                except (TypeError, ValueError):
                    raise _spec.InvalidSpecError(name, f"must be an integer, got {value!r}") from None
        if self.retry_on_timeout is not None:
            value = self.retry_on_timeout
            if isinstance(value, str):
                value = value.strip().lower() in ("true", "1", "yes")
            settings["retry_on_timeout"] = bool(value)
        return settings


class DatabricksNotebookOperator(_DatabricksOneTaskOperator):
    """Run a notebook (``runs/submit``) exactly once per logical attempt, and watch it deferred.

    Arguments as the provider's operator of the same name, standalone: ``notebook_params`` become the
    notebook's ``base_parameters``, ``notebook_packages`` its ``libraries``, and ``execution_timeout``
    the run's ``timeout_seconds`` (0, no limit, when unset; a zero ``execution_timeout`` is refused).
    """

    resume_key = "resumable_triggers.databricks_notebook"
    provider_operator = "DatabricksNotebookOperator"
    template_fields: Sequence[str] = (
        "notebook_params",
        "workflow_run_metadata",
        "max_retries",
        "min_retry_interval_millis",
        "retry_on_timeout",
        "databricks_conn_id",
    )

    def __init__(
        self,
        *,
        notebook_path: str,
        source: str,
        notebook_packages: list[dict[str, Any]] | None = None,
        notebook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.execution_timeout is not None and int(self.execution_timeout.total_seconds()) == 0:
            raise _spec.InvalidSpecError(
                "execution_timeout", "must not be 0; leave it None for a run without a time limit"
            )
        self.notebook_path = notebook_path
        self.source = source
        self.notebook_packages = notebook_packages or []
        self.notebook_params = notebook_params or {}

    def task_base(self) -> dict[str, Any]:
        timeout = self.execution_timeout
        return {
            "timeout_seconds": 0 if timeout is None else int(timeout.total_seconds()),
            # The provider sends an empty one; kept so that the body is the provider's, field for field.
            "email_notifications": {},
            "notebook_task": {
                "notebook_path": self.notebook_path,
                "source": self.source,
                "base_parameters": self.notebook_params,
            },
            "libraries": self.notebook_packages,
        }


class DatabricksTaskOperator(_DatabricksOneTaskOperator):
    """Run one task given as the Jobs API's task object (``task_config``) exactly once per logical
    attempt, and watch it deferred. Arguments as the provider's operator of the same name, standalone;
    ``max_retries``, ``min_retry_interval_millis`` and ``retry_on_timeout`` override ``task_config``'s.
    """

    resume_key = "resumable_triggers.databricks_task"
    provider_operator = "DatabricksTaskOperator"
    template_fields: Sequence[str] = (
        "databricks_conn_id",
        "task_config",
        "workflow_run_metadata",
        "max_retries",
        "min_retry_interval_millis",
        "retry_on_timeout",
    )

    def __init__(self, *, task_config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_config = task_config

    def task_base(self) -> dict[str, Any]:
        if not isinstance(self.task_config, Mapping):
            raise _spec.InvalidSpecError(
                "task_config", f"must be a mapping, got {type(self.task_config).__name__}"
            )
        return dict(self.task_config)


def _workflow_task_group(operator: Any) -> Any:
    """The enclosing provider ``DatabricksWorkflowTaskGroup``, found as the provider finds it (its
    ``is_databricks`` flag, up through nested groups), or None."""
    group = operator.task_group
    while group is not None:
        if getattr(group, "is_databricks", False):
            return group
        group = getattr(group, "task_group", None)
    return None

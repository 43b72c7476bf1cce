"""Databricks operators: the provider's arguments, our resume machinery.

Switching from ``airflow.providers.databricks.operators.databricks`` is a one-line import change: every
argument of the provider's operators is accounted for in ``_provider_args`` (supported, accepted
without effect, or rejected at DAG parse saying why and what to use), and what the provider adds to a
request (forwarded params, OpenLineage context) is added the same way by ``_provider_payload``.
``deferrable`` defaults to True and ``cancel_on_kill`` says whether a user's kill cancels the run.

    _DatabricksRunOperator            connection, XComs, status, cancel, trigger: how a run is watched
     ├── _DatabricksJsonOperator      json and its merge: DatabricksSubmitRunOperator,
     │    └── (_run_now)              DatabricksRunNowOperator: an existing job, and repairing its run
     └── (_task_operators)            the one-task bodies: DatabricksNotebookOperator, ...TaskOperator
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink, conf

from resumable_triggers.databricks import _provider_args, _provider_payload, _spec
from resumable_triggers.databricks._connection import Workspace, workspace_for
from resumable_triggers.databricks._trigger import (
    DatabricksRunTrigger,
    RunEvent,
    read_status,
    run_event,
)
from resumable_triggers.databricks.client import DatabricksClient
from resumable_triggers.resume import (
    ExternalId,
    JobEvent,
    JobPhase,
    JobStatus,
    ResumableDeferrableOperator,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

XCOM_RUN_ID_KEY = "run_id"
XCOM_RUN_PAGE_URL_KEY = "run_page_url"


class DatabricksRunLink(BaseOperatorLink):
    """The "See Databricks Job Run" button on task instances (reads the ``run_page_url`` XCom)."""

    name = "See Databricks Job Run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(key=XCOM_RUN_PAGE_URL_KEY, ti_key=ti_key) or ""


class _DatabricksRunOperator(ResumableDeferrableOperator):
    """The connection, the XComs and the watching of a run: what every operator here shares. How the
    run is requested (the body, its arguments) is each subclass's own."""

    job_kind = "databricks"
    external_id_xcom_key = XCOM_RUN_ID_KEY
    url_xcom_key = XCOM_RUN_PAGE_URL_KEY
    event_type = RunEvent
    operator_extra_links = (DatabricksRunLink(),)
    template_ext: Sequence[str] = (".json-tpl",)
    ui_color = "#1CB1C2"
    ui_fgcolor = "#fff"
    # The provider operator whose arguments this one takes (a subclass keeps its parent's table).
    provider_operator: ClassVar[str]

    def __init__(
        self,
        *,
        databricks_conn_id: str = "databricks_default",
        do_xcom_push: bool = True,
        requests_per_second: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(do_xcom_push=do_xcom_push, **kwargs)
        self.databricks_conn_id = databricks_conn_id
        self.requests_per_second = requests_per_second
        self._workspace: Workspace | None = None

    def prepare(self, context: Context) -> None:
        self._workspace = workspace_for(self.databricks_conn_id)

    def remote_name(self) -> str:
        host = self._workspace.host if self._workspace is not None else "(connection not read yet)"
        return f"Databricks at {host} (connection {self.databricks_conn_id!r})"

    def _client(self) -> DatabricksClient:
        assert self._workspace is not None, "prepare() runs before any remote call"
        return DatabricksClient(self._workspace.host, self._workspace.headers)

    async def job_status(self, external_id: ExternalId) -> JobStatus:
        async with self._client() as client:
            return await read_status(client, int(external_id))

    async def cancel_job(self, external_id: ExternalId) -> None:
        async with self._client() as client:
            await client.cancel_run(int(external_id))

    def job_trigger(self, external_id: ExternalId) -> DatabricksRunTrigger:
        extra: dict[str, Any] = (
            {} if self.requests_per_second is None else {"requests_per_second": self.requests_per_second}
        )
        return DatabricksRunTrigger(
            external_id=int(external_id),
            databricks_conn_id=self.databricks_conn_id,
            poll_interval_seconds=float(self.polling_period_seconds),
            cancel_on_kill=self.cancel_on_kill,
            **extra,
        )

    async def job_event(self, external_id: ExternalId, status: JobStatus) -> JobEvent:
        if status.phase is JobPhase.GONE:
            return await super().job_event(external_id, status)
        async with self._client() as client:
            return await run_event(client, await client.get_run(int(external_id)), status)


class _DatabricksJsonOperator(_DatabricksRunOperator):
    """The arguments the provider's submit-run and run-now operators share: ``json`` and its merge."""

    def __init__(
        self,
        *,
        json: Any | None = None,
        idempotency_token: str | None = None,
        performance_target: str | None = None,
        wait_for_termination: bool = True,
        durable: bool | None = None,
        databricks_retry_limit: int | None = None,
        databricks_retry_delay: float | None = None,
        databricks_retry_args: dict[str, Any] | None = None,
        openlineage_inject_parent_job_info: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _provider_args.check_arguments(
            self.provider_operator,
            {
                "wait_for_termination": wait_for_termination,
                "durable": durable,
                "databricks_retry_limit": databricks_retry_limit,
                "databricks_retry_delay": databricks_retry_delay,
                "databricks_retry_args": databricks_retry_args,
            },
        )
        self.json = json
        self.idempotency_token = idempotency_token
        self.performance_target = performance_target
        self.openlineage_inject_parent_job_info = _lineage_default(
            openlineage_inject_parent_job_info, "spark_inject_parent_job_info"
        )

    def token_salt(self) -> str:
        # A user's own token stays an input, but the library still varies it per cycle and generation:
        # reusing it verbatim would hand every retry the first (possibly failed) run back.
        json_token = self.json.get("idempotency_token") if isinstance(self.json, dict) else None
        return str(self.idempotency_token or json_token or "")

    def _merged_request(self) -> dict[str, Any]:
        """``json`` merged with the named template fields (named win), as the provider merges them;
        without the user's idempotency token, which only salts the tokens the library derives."""
        named = {name: getattr(self, name) for name in self.template_fields if name not in _NOT_BODY}
        merged = _spec.merge(self.json, named)
        merged.pop("idempotency_token", None)
        return merged


class DatabricksSubmitRunOperator(_DatabricksJsonOperator):
    """Submit a one-time run (``runs/submit``) exactly once per logical attempt, and watch it deferred.

    Arguments as the Databricks provider's operator of the same name: ``json`` merged with the named
    fields (named fields win). A single top-level task (``notebook_task`` + ``new_cluster``...) is
    moved into ``tasks`` with ``task_key`` = the task id. The spec is validated before any API call.
    """

    resume_key = "resumable_triggers.databricks_submit_run"
    provider_operator = "DatabricksSubmitRunOperator"
    template_fields: Sequence[str] = (
        "json",
        "tasks",
        "spark_jar_task",
        "notebook_task",
        "spark_python_task",
        "spark_submit_task",
        "pipeline_task",
        "dbt_task",
        "new_cluster",
        "existing_cluster_id",
        "libraries",
        "environments",
        "run_name",
        "timeout_seconds",
        "idempotency_token",
        "access_control_list",
        "git_source",
        "performance_target",
        "databricks_conn_id",
    )

    def __init__(
        self,
        *,
        tasks: list[Any] | None = None,
        spark_jar_task: dict[str, Any] | None = None,
        notebook_task: dict[str, Any] | None = None,
        spark_python_task: dict[str, Any] | None = None,
        spark_submit_task: dict[str, Any] | None = None,
        pipeline_task: dict[str, Any] | None = None,
        dbt_task: dict[str, Any] | None = None,
        new_cluster: dict[str, Any] | None = None,
        existing_cluster_id: str | None = None,
        libraries: list[dict[str, Any]] | None = None,
        environments: list[dict[str, Any]] | None = None,
        run_name: str | None = None,
        timeout_seconds: int | None = None,
        access_control_list: list[dict[str, Any]] | None = None,
        git_source: dict[str, Any] | None = None,
        openlineage_inject_transport_info: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.openlineage_inject_transport_info = _lineage_default(
            openlineage_inject_transport_info, "spark_inject_transport_info"
        )
        self.tasks = tasks
        self.spark_jar_task = spark_jar_task
        self.notebook_task = notebook_task
        self.spark_python_task = spark_python_task
        self.spark_submit_task = spark_submit_task
        self.pipeline_task = pipeline_task
        self.dbt_task = dbt_task
        self.new_cluster = new_cluster
        self.existing_cluster_id = existing_cluster_id
        self.libraries = libraries
        self.environments = environments
        self.run_name = run_name
        self.timeout_seconds = timeout_seconds
        self.access_control_list = access_control_list
        self.git_source = git_source
        self._body: dict[str, Any] = {}

    def validate_job(self) -> None:
        merged = self._merged_request()
        merged.setdefault("run_name", self.task_id)
        body = _spec.normalise_submit(merged, default_task_key=self.task_id)
        # The provider forwards the task's params into every submit, with no argument to turn it off.
        self._body = _provider_payload.forward_into_tasks(body, self.params)
        _spec.check_json(self._body, "json")

    async def submit_job(self, token: str, context: Context) -> ExternalId:
        body = _provider_payload.inject_lineage_into_submit(
            self._body,
            context,
            parent_job_info=self.openlineage_inject_parent_job_info,
            transport_info=self.openlineage_inject_transport_info,
        )
        async with self._client() as client:
            return await client.submit_run(body, idempotency_token=token)


# Template fields that configure the operator rather than the request body.
_NOT_BODY = frozenset({"json", "databricks_conn_id", "idempotency_token"})


def _lineage_default(value: bool | None, option: str) -> bool:
    """The provider's default for its OpenLineage flags: the ``[openlineage]`` option, else False."""
    return conf.getboolean("openlineage", option, fallback=False) if value is None else value

"""``DatabricksRunNowOperator``: trigger an existing job once per logical attempt, repair its run in place.

The request is the provider's (``job_id`` or ``job_name``, the ``*_params``, ``job_parameters``,
forwarded DAG params, OpenLineage's parent info); what this module adds is the repair side of
``resume.JobContract``: ``wants_repair`` decides, ``repair_view`` reads the run with its repair
history, ``repair_job`` sends ``runs/repair`` with the ``latest_repair_id`` the try saw. The pure rules
that make each repair happen exactly once live in ``resume._repair``; here is only what Databricks
says and how it says no (a stale ``latest_repair_id``, a run in progress: 400 or 409, ``RepairRefused``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resumable_triggers.databricks import _provider_payload, _spec
from resumable_triggers.databricks._operators import _DatabricksJsonOperator
from resumable_triggers.databricks._trigger import run_status
from resumable_triggers.databricks.client import ApiError, DatabricksClient, RunNotFound
from resumable_triggers.resume import ExternalId, JobStatus, RepairHistory, RepairRefused

if TYPE_CHECKING:
    from airflow.sdk import Context


class DatabricksRunNowOperator(_DatabricksJsonOperator):
    """Trigger an existing job (``run-now``) exactly once per logical attempt, and watch it deferred.

    ``cancel_previous_runs`` cancels the job's active runs (``runs/cancel-all``) before a submit with a
    new token only: a retry that reconnects to its run, or resubmits its stored token (which hands the
    same run back), never cancels the run it is about to adopt. ``forward_dag_params`` (default True)
    sends the task's params as ``job_parameters`` when no parameters are set otherwise.

    ``repair_run`` repairs a failed run in place (every failed task re-runs on the same run id) at most
    ``max_repairs`` times (default 1) per logical attempt, each exactly once (``resume._repair``); with
    ``databricks_repair_reason_new_settings`` only failures whose message names a reason are
    repaired, after ``jobs/update`` with that reason's settings.
    """

    resume_key = "resumable_triggers.databricks_run_now"
    provider_operator = "DatabricksRunNowOperator"
    template_fields: Sequence[str] = (
        "json",
        "job_id",
        "job_name",
        "job_parameters",
        "dbt_commands",
        "notebook_params",
        "python_params",
        "python_named_params",
        "jar_params",
        "spark_submit_params",
        "idempotency_token",
        "performance_target",
        "databricks_conn_id",
    )

    def __init__(
        self,
        *,
        job_id: int | str | None = None,
        job_name: str | None = None,
        job_parameters: dict[str, Any] | None = None,
        dbt_commands: list[str] | None = None,
        notebook_params: dict[str, Any] | None = None,
        python_params: list[str] | None = None,
        python_named_params: dict[str, Any] | None = None,
        jar_params: list[str] | None = None,
        spark_submit_params: list[str] | None = None,
        cancel_previous_runs: bool = False,
        forward_dag_params: bool = True,
        repair_run: bool = False,
        databricks_repair_reason_new_settings: dict[str, Any] | None = None,
        max_repairs: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.repair_run = repair_run
        self.databricks_repair_reason_new_settings = _spec.check_repair(
            repair_run, max_repairs, databricks_repair_reason_new_settings
        )
        self.max_repairs = max_repairs if repair_run else 0
        self.cancel_previous_runs = cancel_previous_runs
        self.forward_dag_params = forward_dag_params
        self.job_id = job_id
        self.job_name = job_name
        self.job_parameters = job_parameters
        self.dbt_commands = dbt_commands
        self.notebook_params = notebook_params
        self.python_params = python_params
        self.python_named_params = python_named_params
        self.jar_params = jar_params
        self.spark_submit_params = spark_submit_params
        self._body: dict[str, Any] = {}
        self._job_id: int | None = None  # resolved from job_name at most once per try

    def validate_job(self) -> None:
        merged = self._merged_request()
        _spec.check_run_now(merged.get("job_id"), merged.get("job_name"))
        if self.forward_dag_params:
            merged = _provider_payload.forward_as_job_parameters(merged, self.params)
        _spec.check_run_now_body(merged)
        self._body = merged

    async def before_new_job(self, context: Context) -> None:
        if not self.cancel_previous_runs:
            return
        async with self._client() as client:
            job_id = await self._resolve_job_id(client)
            await client.cancel_all_runs(job_id)
        self.log.info("cancel_previous_runs: asked to cancel every active run of job %s", job_id)

    async def submit_job(self, token: str, context: Context) -> ExternalId:
        body = {key: value for key, value in self._body.items() if key not in ("job_id", "job_name")}
        if self.openlineage_inject_parent_job_info:
            body = _provider_payload.inject_lineage_into_run_now(body, context)
        async with self._client() as client:
            job_id = await self._resolve_job_id(client)
            return await client.run_now(job_id, idempotency_token=token, parameters=body)

    def wants_repair(self, status: JobStatus) -> bool:
        # A person's cancel is deliberate: repairing it would undo them.
        return not status.state.endswith("/CANCELED") and (
            not self.databricks_repair_reason_new_settings or self._repair_reason(status) is not None
        )

    async def repair_view(self, external_id: ExternalId) -> tuple[JobStatus, RepairHistory]:
        async with self._client() as client:
            run = await client.get_run(int(external_id), include_history=True)
        return run_status(run), RepairHistory(count=len(run.repairs), latest=run.latest_repair_id)

    async def repair_job(self, external_id: ExternalId, *, after: int | None, status: JobStatus) -> int:
        if not self._body:  # a resumed try (execute_complete) has not built it
            self.validate_job()
        parameters = (
            {"job_parameters": self._body["job_parameters"]} if "job_parameters" in self._body else None
        )
        async with self._client() as client:
            reason = self._repair_reason(status)
            if reason is not None:
                job_id = await self._resolve_job_id(client)
                # Sent again after a crash: the same partial update leaves the same job.
                await client.update_job(job_id, self.databricks_repair_reason_new_settings[reason])
                self.log.info("repair reason %r matched: updated the settings of job %s", reason, job_id)
            try:
                return await client.repair_run(
                    int(external_id), latest_repair_id=after, parameters=parameters
                )
            except ApiError as exc:
                if isinstance(exc, RunNotFound) or exc.status not in (400, 409):
                    raise
                raise RepairRefused(f"{exc.error_code}: {exc.message}") from exc

    def _repair_reason(self, status: JobStatus) -> str | None:
        reasons = self.databricks_repair_reason_new_settings
        return next((reason for reason in reasons if reason in status.message), None)

    async def _resolve_job_id(self, client: DatabricksClient) -> int:
        if self._job_id is None:
            name = self._body.get("job_name")
            self._job_id = int(self._body["job_id"]) if name is None else await client.find_job_id(name)
        return self._job_id

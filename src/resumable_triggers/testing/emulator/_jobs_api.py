"""Jobs API handlers for jobs themselves: just enough of create/get/list/reset/delete for run-now
by job id or by job name (``jobs/list?name=``)."""

from __future__ import annotations

from typing import Any

from resumable_triggers.databricks.client import _request_rules

from ._errors import invalid, rejected
from ._params import Context, Params, Result
from ._store import MAX_JOB_TASKS, EmulatedWorkspace, JobRecord, validate_tasks

_SETTINGS = (
    "name",
    "tasks",
    "job_clusters",
    "parameters",
    "timeout_seconds",
    "queue",
    "tags",
    "max_concurrent_runs",
    "email_notifications",
    "schedule",
)


def _validated_settings(p: Params) -> dict[str, Any]:
    settings = {k: p.raw(k) for k in _SETTINGS if k in p}
    p.string("name")
    validate_tasks(p.array("tasks"), MAX_JOB_TASKS)
    p.array("job_clusters")
    p.array("parameters")
    p.obj("queue")
    timeout = p.int64("timeout_seconds", default=0) or 0
    if timeout < 0:
        raise invalid(f"Invalid value for parameter timeout_seconds: must be >= 0, got {timeout}")
    rejected(_request_rules.check_create(p.body()))
    settings.setdefault("name", "Untitled")
    return settings


def jobs_create(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    return {"job_id": ws.create_job(_validated_settings(p), ctx.now).job_id}, None


def _render_job(job: JobRecord, expand: bool) -> dict[str, Any]:
    settings = dict(job.settings)
    if not expand:
        settings.pop("tasks", None)
        settings.pop("job_clusters", None)
    return {
        "job_id": job.job_id,
        "creator_user_name": job.creator_user_name,
        "run_as_user_name": job.creator_user_name,
        "created_time": int(job.created_time * 1000),
        "settings": settings,
    }


def jobs_get(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    return _render_job(ws.find_job(p.required_int64("job_id")), True), None


def jobs_list(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    offset = p.int64("offset", default=0) or 0
    if offset < 0:
        raise invalid(f"Invalid value for parameter offset: must be >= 0, got {offset}")
    limit = p.page_limit("limit", default=20, maximum=100)
    jobs, has_more, next_token, prev_token = ws.list_jobs(
        p.string("name"), limit, offset, p.string("page_token")
    )
    body: dict[str, Any] = {}
    if jobs:
        body["jobs"] = [_render_job(j, p.boolean("expand_tasks")) for j in jobs]
    body["has_more"] = has_more
    if next_token:
        body["next_page_token"] = next_token
    if prev_token:
        body["prev_page_token"] = prev_token
    return body, None


def jobs_delete(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    job = ws.find_job(p.required_int64("job_id"))
    del ws.jobs[job.job_id]
    return {}, None


def jobs_reset(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    job = ws.find_job(p.required_int64("job_id"))
    job.settings = _validated_settings(Params(p.obj("new_settings")))
    return {}, None

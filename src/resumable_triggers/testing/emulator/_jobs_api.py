"""Jobs API handlers for jobs themselves: just enough of create/get/list/reset/update/delete for
run-now by job id or by job name (``jobs/list?name=``).

``jobs/update`` merges as Databricks documents it: first ``fields_to_remove`` (top-level fields, or
one entry by ``tasks/<task_key>`` / ``job_clusters/<job_cluster_key>``; removing what is not there is
a no-op), then ``new_settings``: top-level fields replace the job's, except the arrays ``tasks`` and
``job_clusters``, merged by key (an entry with a known key replaces that entry whole, in its place;
new keys are appended). The result is checked as ``jobs/create`` checks its body, and only then stored.
Runs started afterwards use the new settings; active runs keep theirs (including ``timeout_seconds``,
which a workspace applies to active runs too).
"""

from __future__ import annotations

from typing import Any

from resumable_triggers.databricks.client import _request_rules

from ._errors import invalid, malformed, rejected
from ._params import Context, Params, Result
from ._store import EmulatedWorkspace, JobRecord
from ._task_specs import MAX_JOB_TASKS, validate_tasks

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


# The arrays jobs/update merges entry by entry, and the key that identifies an entry.
_MERGED_ARRAYS = {"tasks": "task_key", "job_clusters": "job_cluster_key"}


def _merge_array(current: Any, given: list[Any], name: str, key: str) -> list[Any]:
    merged = list(current) if isinstance(current, list) else []
    positions = {e.get(key): i for i, e in enumerate(merged) if isinstance(e, dict)}
    for index, entry in enumerate(given):
        where = f"new_settings.{name}[{index}]"
        if not isinstance(entry, dict):
            raise malformed(f"Invalid value for parameter {where}: expected an object")
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise invalid(f"Invalid value for parameter {where}.{key}: a non-empty string is required")
        if entry[key] in positions:
            merged[positions[entry[key]]] = entry
        else:
            positions[entry[key]] = len(merged)
            merged.append(entry)
    return merged


def _remove(settings: dict[str, Any], path: str) -> None:
    name, slash, key = path.partition("/")
    if not slash:
        settings.pop(name, None)
        return
    if name not in _MERGED_ARRAYS or not key or "/" in key:
        raise invalid(
            f"Invalid value for parameter fields_to_remove: {path!r}; only top-level fields, "
            "tasks/<task_key> and job_clusters/<job_cluster_key> can be removed"
        )
    entries = settings.get(name)
    if isinstance(entries, list):
        settings[name] = [
            e for e in entries if not (isinstance(e, dict) and e.get(_MERGED_ARRAYS[name]) == key)
        ]


def jobs_update(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    job = ws.find_job(p.required_int64("job_id"))
    new_settings = p.obj("new_settings")
    removals = p.array("fields_to_remove")
    if not all(isinstance(path, str) for path in removals):
        raise malformed("Invalid value for parameter fields_to_remove: expected an array of strings")
    settings = dict(job.settings)
    for path in removals:
        _remove(settings, path)
    for name, value in new_settings.items():
        if name in _MERGED_ARRAYS and value is not None:
            if not isinstance(value, list):
                raise malformed(f"Invalid value for parameter new_settings.{name}: expected an array")
            settings[name] = _merge_array(settings.get(name), value, name, _MERGED_ARRAYS[name])
        else:
            settings[name] = value
    job.settings = _validated_settings(Params(settings))
    return {}, None

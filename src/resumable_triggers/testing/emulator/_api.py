"""Jobs API handlers: parse parameters, act on the workspace, shape the JSON answer.

Each handler is synchronous and runs under the emulator's lock, so a request is applied atomically.
It returns the response body and the run id it concerns (for the request log).
"""

from __future__ import annotations

from typing import Any

from resumable_triggers.databricks.client import _request_rules

from ._errors import ErrorReply, invalid, malformed, rejected, run_not_found
from ._jobs_api import jobs_create, jobs_delete, jobs_get, jobs_list, jobs_reset, jobs_update
from ._params import Context, Handler, Params, Result
from ._render import render_run, render_task
from ._runs import RunRecord, TaskRecord, effective_outcome, is_active, start_ms, task_attempt
from ._store import EmulatedWorkspace
from ._task_specs import MAX_SUBMIT_TASKS, validate_tasks

RUNS_GET_PAGE_SIZE = 100
_PAGED_ARRAYS = ("tasks", "job_clusters", "job_parameters", "repair_history")
_RUN_TYPES = frozenset({"JOB_RUN", "WORKFLOW_RUN", "SUBMIT_RUN"})
_MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of "
    "each individual task run instead."
)


def _token(p: Params) -> str | None:
    return p.string("idempotency_token", max_length=64)


def _legacy_task(p: Params) -> list[dict[str, Any]]:
    # Single-task submits in the 2.0 shape (a top-level *_task) still work; the task key is assumed.
    body = {
        k: p.raw(k)
        for k in (
            "notebook_task",
            "spark_jar_task",
            "spark_python_task",
            "spark_submit_task",
            "python_wheel_task",
            "sql_task",
            "dbt_task",
            "pipeline_task",
            "run_job_task",
            "existing_cluster_id",
            "new_cluster",
            "libraries",
        )
        if k in p
    }
    if not any(k.endswith("_task") for k in body):
        raise invalid("Invalid value for parameter tasks: at least one task is required")
    for key, value in body.items():
        if key.endswith("_task") and not isinstance(value, dict):
            raise malformed(f"Invalid value for parameter {key}: expected an object")
    return [{"task_key": p.string("run_name") or "task", **body}]


def submit(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    token = _token(p)
    existing = ws.idempotent_run(token)
    if existing is not None:
        return {"run_id": existing}, existing
    tasks = p.array("tasks")
    specs = validate_tasks(tasks, MAX_SUBMIT_TASKS) if tasks else _legacy_task(p)
    timeout = p.int64("timeout_seconds", default=0) or 0
    if timeout < 0:
        raise invalid(f"Invalid value for parameter timeout_seconds: must be >= 0, got {timeout}")
    # The legacy shape's task key is made up from run_name, so it is checked under a key that is valid.
    checked = specs if tasks else [{**specs[0], "task_key": "task"}]
    rejected(_request_rules.check_submit({**p.body(), "tasks": checked}))
    queue = p.obj("queue")
    run = ws.create_run(
        ctx.now,
        task_specs=specs,
        run_name=p.string("run_name") or "Untitled",
        run_type="SUBMIT_RUN",
        timeout_seconds=timeout,
        queued=queue.get("enabled") is True,
        token=token,
        job_clusters=p.array("job_clusters"),
    )
    return {"run_id": run.run_id}, run.run_id


def run_now(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    job = ws.find_job(p.required_int64("job_id"))
    token = _token(p)
    existing = ws.idempotent_run(token)
    if existing is not None:
        return {"run_id": existing, "number_in_job": existing}, existing
    overrides = {
        k: p.raw(k)
        for k in (
            "notebook_params",
            "job_parameters",
            "python_named_params",
            "sql_params",
            "python_params",
            "jar_params",
            "spark_submit_params",
        )
    }
    for key in ("notebook_params", "python_named_params", "sql_params"):
        p.obj(key)
    for key in ("python_params", "jar_params", "spark_submit_params"):
        p.array(key)
    given = p.raw("job_parameters")
    if given is not None and not isinstance(given, dict):
        raise malformed("Invalid value for parameter job_parameters: expected an object")
    rejected(_request_rules.check_run_now(p.body()))
    defaults = {
        d.get("name"): d.get("default") for d in job.settings.get("parameters", []) if isinstance(d, dict)
    }
    job_parameters = [
        {"name": name, "default": defaults.get(name), "value": (given or {}).get(name, defaults.get(name))}
        for name in dict.fromkeys([*defaults, *(given or {})])
    ]
    timeout = job.settings.get("timeout_seconds", 0)
    run = ws.create_run(
        ctx.now,
        task_specs=[dict(t) for t in job.settings.get("tasks", [])],
        run_name=str(job.settings.get("name", "Untitled")),
        run_type="JOB_RUN",
        job_id=job.job_id,
        timeout_seconds=timeout if isinstance(timeout, int | float) else 0,
        queued=(job.settings.get("queue") or {}).get("enabled") is True,
        token=token,
        overrides=overrides,
        job_clusters=list(job.settings.get("job_clusters", [])),
        job_parameters=job_parameters,
    )
    return {"run_id": run.run_id, "number_in_job": run.run_id}, run.run_id


def get(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    run_id = p.required_int64("run_id")
    run = ws.find(run_id, ctx.now)
    include_history = p.boolean("include_history")
    if run_id != run.run_id:
        task = ws.find_task(run, run_id)
        assert task is not None  # find() resolved the id through this run's tasks
        return _task_run(run, task, ctx), run_id
    body = render_run(run, ctx.now, ctx.page_url, with_history=include_history)
    if ctx.version != "2.1":
        body = _page(body, p.string("page_token"), run_id)
    return body, run_id


def _page(body: dict[str, Any], token: str | None, run_id: int) -> dict[str, Any]:
    """API 2.2 pages the run's arrays 100 at a time; arrays with nothing left are dropped."""
    page = 0
    if token:
        if not (token.startswith("p") and token[1:].isdigit()) or int(token[1:]) > 100_000:
            raise invalid(f"Invalid value for parameter page_token: {token[:40]!r}")
        page = int(token[1:])
    start, stop = page * RUNS_GET_PAGE_SIZE, (page + 1) * RUNS_GET_PAGE_SIZE
    more = False
    for name in _PAGED_ARRAYS:
        values = body.get(name)
        if values is None:
            continue
        chunk = values[start:stop]
        if chunk:
            body[name] = chunk
        else:
            del body[name]
        more = more or len(values) > stop
    if more:
        body["next_page_token"] = f"p{page + 1}"
    if page:
        body["prev_page_token"] = f"p{page - 1}"
    return body


def _task_run(run: RunRecord, task: TaskRecord, ctx: Context) -> dict[str, Any]:
    body = render_task(run, task, ctx.now, ctx.page_url)
    # A retry names the first attempt of its chain (the same task in the same run attempt).
    original = min(
        (
            t
            for t in (*run.tasks, *run.replaced_tasks)
            if (t.task_key, t.attempt_index) == (task.task_key, task.attempt_index)
        ),
        key=lambda t: t.attempt_number,
    )
    body.update(
        job_id=run.job_id,
        run_name=run.run_name,
        run_type=run.run_type,
        creator_user_name=run.creator_user_name,
        number_in_job=task.run_id,
        original_attempt_run_id=original.run_id,
        parent_run_id=run.run_id,
    )
    return body


def list_runs(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    active_only, completed_only = p.boolean("active_only"), p.boolean("completed_only")
    if active_only and completed_only:
        raise invalid("active_only and completed_only cannot both be true.")
    job_id = p.int64("job_id")
    run_type = p.string("run_type")
    if run_type is not None and run_type not in _RUN_TYPES:
        raise invalid(f"Invalid value for parameter run_type: must be one of {sorted(_RUN_TYPES)}")
    start_from, start_to = p.int64("start_time_from"), p.int64("start_time_to")
    offset = p.int64("offset", default=0) or 0
    if offset < 0:
        raise invalid(f"Invalid value for parameter offset: must be >= 0, got {offset}")
    limit = p.page_limit("limit", default=20, maximum=25)
    now = ctx.now

    def keep(run: RunRecord) -> bool:
        if job_id is not None and run.job_id != job_id:
            return False
        if run_type is not None and run.run_type != run_type:
            return False
        started = start_ms(run)
        if (start_from and started < start_from) or (start_to and started > start_to):
            return False
        if active_only or completed_only:
            return is_active(run, now) == active_only
        return True

    page = ws.list_runs(now, keep=keep, limit=limit, offset=offset, page_token=p.string("page_token"))
    expand = p.boolean("expand_tasks")
    body: dict[str, Any] = {}
    if page.runs:
        body["runs"] = [render_run(r, now, ctx.page_url, with_tasks=expand) for r in page.runs]
    body["has_more"] = page.has_more
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    if page.prev_page_token:
        body["prev_page_token"] = page.prev_page_token
    return body, None


def cancel(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    run_id = p.required_int64("run_id")
    ws.cancel(ws.find(run_id, ctx.now), ctx.now)
    return {}, run_id


def cancel_all(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    job_id = p.int64("job_id")
    all_queued = p.boolean("all_queued_runs")
    if job_id is None and not all_queued:
        raise invalid("Either job_id or all_queued_runs must be provided.")
    for run in ws:
        if job_id is not None and run.job_id != job_id:
            continue
        if all_queued and job_id is None and run.attempt.phase(ctx.now) != "QUEUED":
            continue
        ws.cancel(run, ctx.now)
    return {}, None


def delete(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    run_id = p.required_int64("run_id")
    run = ws.find(run_id, ctx.now)
    if run.run_id != run_id:
        raise invalid(f"Run {run_id} is a task run; delete its parent run {run.run_id} instead.")
    if is_active(run, ctx.now):
        raise ErrorReply(400, "INVALID_STATE", f"Run {run_id} is still active; cancel it before deleting it.")
    ws.remove(run)
    return {}, run_id


def repair(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    run_id = p.required_int64("run_id")
    run = ws.find(run_id, ctx.now)
    if run.run_id != run_id:
        raise invalid(f"Run {run_id} is a task run; repair its parent run {run.run_id} instead.")
    if is_active(run, ctx.now):
        raise ErrorReply(
            400, "INVALID_STATE", f"Run {run_id} is in progress; only finished runs can be repaired."
        )
    latest = p.int64("latest_repair_id")
    current = run.attempt.repair_id
    if current is not None and latest != current:
        raise invalid(
            f"Invalid value for parameter latest_repair_id: the latest repair of run {run_id} is {current}"
        )
    keys = p.array("rerun_tasks")
    if not all(isinstance(k, str) for k in keys):
        raise malformed("Invalid value for parameter rerun_tasks: expected an array of task keys")
    if p.boolean("rerun_all_failed_tasks"):
        keys = [*keys, *ws.failed_task_keys(run)]
    known = {t.task_key for t in run.tasks}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise invalid(f"Invalid value for parameter rerun_tasks: run {run_id} has no task {unknown[0]!r}")
    if not keys:
        raise invalid("Nothing to repair: give rerun_tasks or rerun_all_failed_tasks with failed tasks.")
    overrides = {
        k: p.raw(k)
        for k in (
            "notebook_params",
            "job_parameters",
            "python_named_params",
            "python_params",
            "jar_params",
            "spark_submit_params",
        )
    }
    repair_id = ws.repair(run, ctx.now, keys, overrides)
    return {"repair_id": repair_id}, run_id


def get_output(ws: EmulatedWorkspace, p: Params, ctx: Context) -> Result:
    run_id = p.required_int64("run_id")
    run = ws.find(run_id, ctx.now)
    if run_id == run.run_id:
        if len(run.tasks) != 1:
            raise invalid(_MULTI_TASK_OUTPUT)
        task = run.tasks[0]
    else:
        found = ws.find_task(run, run_id)
        if found is None:
            raise run_not_found(run_id)
        task = found
    attempt = task_attempt(run, task)
    body: dict[str, Any] = {"metadata": _task_run(run, task, ctx)}
    if ctx.now >= attempt.end:
        outcome = effective_outcome(task, attempt)
        if outcome in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
            if "notebook_task" in task.spec:
                result = {"truncated": False}
                if task.output is not None:
                    result["result"] = task.output  # type: ignore[assignment]
                body["notebook_output"] = result
            elif task.output is not None:
                body.update(logs=task.output, logs_truncated=False)
        elif outcome not in ("SKIPPED", "EXCLUDED"):
            error = task.error or _default_error(outcome)
            body["error"] = error
            body["error_trace"] = (
                'Traceback (most recent call last):\n  File "<emulated task>", line 1, in <module>\n'
                f"Exception: {error}"
            )
    return body, run_id


def _default_error(outcome: str) -> str:
    return {"CANCELED": "Run cancelled.", "TIMEDOUT": "Run timed out."}.get(
        outcome, f"Task ended with {outcome} (emulated)."
    )


# (method, endpoint) -> handler. Endpoints are the path after /api/2.x/jobs/, with "jobs/" kept for
# job-level operations so "runs/list" and "jobs/list" stay distinct.
ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "runs/submit"): submit,
    ("GET", "runs/get"): get,
    ("GET", "runs/list"): list_runs,
    ("POST", "runs/cancel"): cancel,
    ("POST", "runs/cancel-all"): cancel_all,
    ("GET", "runs/get-output"): get_output,
    ("POST", "runs/repair"): repair,
    ("POST", "runs/delete"): delete,
    ("POST", "run-now"): run_now,
    ("POST", "jobs/create"): jobs_create,
    ("GET", "jobs/get"): jobs_get,
    ("GET", "jobs/list"): jobs_list,
    ("POST", "jobs/delete"): jobs_delete,
    ("POST", "jobs/reset"): jobs_reset,
    ("POST", "jobs/update"): jobs_update,
}

"""jobs/update over real HTTP: Databricks' merge of new_settings and fields_to_remove, checked like
jobs/create, and what run-now runs afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_testkit import Api, task

from resumable_triggers.testing import ManualClock


def cluster(key: str, workers: int = 1) -> dict[str, Any]:
    return {
        "job_cluster_key": key,
        "new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": workers},
    }


async def create(api: Api, **settings: Any) -> int:
    return int((await api.ok("POST", "jobs/create", json={"name": "etl", **settings}))["job_id"])


async def settings_of(api: Api, job_id: int) -> dict[str, Any]:
    return dict((await api.ok("GET", "jobs/get", params={"job_id": job_id}))["settings"])


@pytest.mark.asyncio
async def test_update_merges_tasks_and_job_clusters_by_key_and_replaces_other_fields(api: Api) -> None:
    """A task with a known task_key is replaced whole in its place, a new one appended, the others
    kept; job_clusters likewise by job_cluster_key; name and tags are replaced outright."""
    job_id = await create(
        api,
        tasks=[task("extract"), task("load")],
        job_clusters=[cluster("small"), cluster("big", 8)],
        tags={"team": "a", "tier": "1"},
    )
    await api.ok(
        "POST",
        "jobs/update",
        json={
            "job_id": job_id,
            "new_settings": {
                "name": "etl-v2",
                "tasks": [task("load", duration_seconds="3"), task("report")],
                "job_clusters": [cluster("small", 2)],
                "tags": {"team": "b"},
            },
        },
    )
    settings = await settings_of(api, job_id)
    assert (
        "etl-v2",
        ["extract", "load", "report"],
        {"emulator.duration_seconds": "3"},
        [("small", 2), ("big", 8)],
        {"team": "b"},
    ) == (
        settings["name"],
        [t["task_key"] for t in settings["tasks"]],
        settings["tasks"][1]["notebook_task"]["base_parameters"],
        [(c["job_cluster_key"], c["new_cluster"]["num_workers"]) for c in settings["job_clusters"]],
        settings["tags"],
    )


@pytest.mark.asyncio
async def test_fields_to_remove_drops_a_top_level_field_one_task_and_one_job_cluster(api: Api) -> None:
    """``tags``, ``tasks/load`` and ``job_clusters/big`` are removed; the rest stays; removing what is
    not there changes nothing."""
    job_id = await create(
        api,
        tasks=[task("extract"), task("load")],
        job_clusters=[cluster("small"), cluster("big")],
        tags={"a": "1"},
    )
    await api.ok(
        "POST",
        "jobs/update",
        json={"job_id": job_id, "fields_to_remove": ["tags", "tasks/load", "job_clusters/big", "schedule"]},
    )
    settings = await settings_of(api, job_id)
    assert (False, ["extract"], ["small"]) == (
        "tags" in settings,
        [t["task_key"] for t in settings["tasks"]],
        [c["job_cluster_key"] for c in settings["job_clusters"]],
    )


@pytest.mark.asyncio
async def test_run_now_after_an_update_runs_the_new_settings(api: Api, clock: ManualClock) -> None:
    """The task replaced by jobs/update (now declared FAILED) is what the next run-now runs."""
    job_id = await create(api, tasks=[task("main")])
    await api.ok(
        "POST",
        "jobs/update",
        json={"job_id": job_id, "new_settings": {"tasks": [task("main", result_state="FAILED", error="v2")]}},
    )
    run_id = (await api.ok("POST", "run-now", json={"job_id": job_id}))["run_id"]
    clock.advance(10)
    assert ("TERMINATED", "FAILED") == await api.life_cycle(run_id)


@pytest.mark.asyncio
async def test_update_of_an_unknown_job_says_job_does_not_exist(api: Api) -> None:
    """400 INVALID_PARAMETER_VALUE "Job N does not exist.", as jobs/get and run-now answer."""
    status, body = await api.call("POST", "jobs/update", json={"job_id": 42, "new_settings": {"name": "x"}})
    assert (400, "INVALID_PARAMETER_VALUE", "Job 42 does not exist.") == (
        status,
        body["error_code"],
        body["message"],
    )


@pytest.mark.parametrize(
    ("body", "error_code", "named"),
    [
        (
            {"new_settings": {"tasks": [{"task_key": "extract", "notebook_task": "nope"}]}},
            "MALFORMED_REQUEST",
            "notebook_task",
        ),
        (
            {"new_settings": {"tasks": [{"notebook_task": {"notebook_path": "/x"}}]}},
            "INVALID_PARAMETER_VALUE",
            "task_key",
        ),
        ({"new_settings": {"tasks": {"task_key": "a"}}}, "MALFORMED_REQUEST", "new_settings.tasks"),
        ({"new_settings": {"timeout_seconds": -1}}, "INVALID_PARAMETER_VALUE", "timeout_seconds"),
        (
            {"fields_to_remove": ["tasks/extract/notebook_task"]},
            "INVALID_PARAMETER_VALUE",
            "fields_to_remove",
        ),
        ({"fields_to_remove": "tags"}, "MALFORMED_REQUEST", "fields_to_remove"),
        ({"new_settings": "x"}, "MALFORMED_REQUEST", "new_settings"),
    ],
)
@pytest.mark.asyncio
async def test_an_update_whose_result_jobs_create_would_refuse_is_400_and_changes_nothing(
    api: Api, body: dict[str, Any], error_code: str, named: str
) -> None:
    """The merged settings are checked by the same schema and rules as jobs/create; a refused update
    answers 400 naming the field and leaves the job as it was."""
    job_id = await create(api, tasks=[task("extract")])
    before = await settings_of(api, job_id)
    status, reply = await api.call("POST", "jobs/update", json={"job_id": job_id, **body})
    assert (400, error_code, True, before) == (
        status,
        reply["error_code"],
        named in reply["message"],
        await settings_of(api, job_id),
    )

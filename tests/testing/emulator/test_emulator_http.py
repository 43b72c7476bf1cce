"""The wire contract: routes, auth, parameters, paging, idempotency, and error bodies."""

from __future__ import annotations

import base64
import itertools
from collections import Counter
from typing import Any

import pytest
from emulator_testkit import Api, task

from resumable_triggers.testing import Emulator, ManualClock

# --- routes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.1", "2.2"])
@pytest.mark.asyncio
async def test_both_api_versions_serve_the_jobs_routes(api: Api, version: str) -> None:
    """runs/submit and runs/get answer under /api/2.1 and /api/2.2."""
    run_id = (await api.ok("POST", "runs/submit", json={"tasks": [task()]}, version=version))["run_id"]
    run = await api.ok("GET", "runs/get", params={"run_id": run_id}, version=version)
    assert run_id == run["run_id"]


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/api/2.2/jobs/runs/nope", "No API found for 'GET /jobs/runs/nope'"),
        ("GET", "/api/2.2/jobs/runs/submit", "No API found for 'GET /jobs/runs/submit'"),
        ("POST", "/api/2.0/jobs/runs/submit", "No API found for 'POST /jobs/runs/submit'"),
        ("GET", "/api/2.2/clusters/get", "No API found for 'GET /clusters/get'"),
        ("GET", "/totally/elsewhere", "No API found for 'GET /totally/elsewhere'"),
    ],
)
@pytest.mark.asyncio
async def test_unknown_routes_and_methods_answer_404_endpoint_not_found(
    api: Api, method: str, path: str, message: str
) -> None:
    """Unknown paths, wrong methods and unserved versions answer 404 ENDPOINT_NOT_FOUND."""
    status, body = await api.call(method, "", path=path)
    assert (404, {"error_code": "ENDPOINT_NOT_FOUND", "message": message}) == (status, body)


@pytest.mark.asyncio
async def test_host_metadata_advertises_the_oidc_endpoint_without_auth(api: Api) -> None:
    """/.well-known/databricks-config needs no credentials and points OAuth at {host}/oidc."""
    status, body = await api.call(
        "GET", "", path="/.well-known/databricks-config", headers={"Authorization": ""}
    )
    assert (200, {"oidc_endpoint": f"{api.url}/oidc", "workspace_id": "1234567890123456"}) == (status, body)


# --- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ("", (401, "UNAUTHENTICATED")),
        ("Bearer wrong-token", (403, "PERMISSION_DENIED")),
        ("Token dapi-emulator-token", (401, "UNAUTHENTICATED")),
        ("Basic " + base64.b64encode(b"emulator@example.com:wrong").decode(), (401, "UNAUTHENTICATED")),
        ("Basic !!!not-base64", (401, "UNAUTHENTICATED")),
    ],
)
@pytest.mark.asyncio
async def test_bad_or_missing_credentials_are_refused_with_the_api_error_shape(
    api: Api, authorization: str, expected: tuple[int, str]
) -> None:
    """Missing or unsupported credentials answer 401, a wrong token 403, each with an error_code."""
    status, body = await api.call("GET", "runs/list", headers={"Authorization": authorization})
    assert (expected, True) == ((status, body["error_code"]), bool(body["message"]))


@pytest.mark.asyncio
async def test_http_basic_with_the_configured_login_is_accepted(api: Api) -> None:
    """HTTP Basic with the emulator's login/password authenticates."""
    basic = "Basic " + base64.b64encode(b"emulator@example.com:emulator-password").decode()
    status, _ = await api.call("GET", "runs/list", headers={"Authorization": basic})
    assert 200 == status


def _client_basic(client_id: str = "emulator-client-id", secret: str = "emulator-client-secret") -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.asyncio
async def test_oauth_token_is_accepted_until_it_expires(api: Api, clock: ManualClock) -> None:
    """An access token from /oidc/v1/token authenticates API calls until its lifetime has passed."""
    status, issued = await api.call(
        "POST",
        "",
        path="/oidc/v1/token",
        data=b"grant_type=client_credentials&scope=all-apis",
        headers={"Authorization": _client_basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    fresh = (await api.call("GET", "runs/list", headers=bearer))[0]
    clock.advance(issued["expires_in"])
    expired_status, expired = await api.call("GET", "runs/list", headers=bearer)
    assert (200, "Bearer", 3600, 200, 403, "PERMISSION_DENIED") == (
        status,
        issued["token_type"],
        issued["expires_in"],
        fresh,
        expired_status,
        expired["error_code"],
    )


@pytest.mark.parametrize(
    ("body", "authorization", "expected"),
    [
        (
            b"grant_type=client_credentials&scope=all-apis",
            _client_basic(secret="wrong"),
            (401, "invalid_client"),
        ),
        (b"grant_type=password&scope=all-apis", _client_basic(), (400, "unsupported_grant_type")),
        (b"grant_type=client_credentials&scope=sql", _client_basic(), (400, "invalid_scope")),
        (b"grant_type=client_credentials&scope=all-apis", "", (401, "invalid_client")),
    ],
)
@pytest.mark.asyncio
async def test_token_endpoint_refuses_bad_clients_grants_and_scopes_in_oauth_shape(
    api: Api, body: bytes, authorization: str, expected: tuple[int, str]
) -> None:
    """/oidc/v1/token answers RFC 6749 errors ({error, error_description}) for bad requests."""
    status, answer = await api.call(
        "POST",
        "",
        path="/oidc/v1/token",
        data=body,
        headers={"Authorization": authorization, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert expected == (status, answer["error"])


@pytest.mark.asyncio
async def test_token_endpoint_accepts_client_credentials_in_the_form(api: Api) -> None:
    """client_id/client_secret may come as form fields instead of Basic auth."""
    form = b"grant_type=client_credentials&scope=all-apis&client_id=emulator-client-id"
    form += b"&client_secret=emulator-client-secret"
    status, _ = await api.call(
        "POST",
        "",
        path="/oidc/v1/token",
        data=form,
        headers={"Authorization": "", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 200 == status


# --- parameters ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_parameters_may_come_as_a_json_body(api: Api) -> None:
    """runs/get reads run_id from a JSON body on GET, as the provider's async hook sends it."""
    run_id = await api.submit()
    status, run = await api.call("GET", "runs/get", json={"run_id": run_id})
    assert (200, run_id) == (status, run["run_id"])


@pytest.mark.asyncio
async def test_unknown_run_is_400_invalid_parameter_value_run_does_not_exist(api: Api) -> None:
    """runs/get of an unknown run answers exactly what Databricks does (not 404)."""
    status, body = await api.call("GET", "runs/get", params={"run_id": "12345"})
    assert (400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "Run 12345 does not exist."}) == (
        status,
        body,
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Missing required field: run_id"),
        ({"run_id": "abc"}, "Invalid value for parameter run_id: expected an integer, got 'abc'"),
        ({"run_id": str(2**70)}, f"Invalid value for parameter run_id: '{2**70}' is out of range for int64"),
    ],
)
@pytest.mark.asyncio
async def test_bad_run_id_answers_400_naming_the_parameter(
    api: Api, params: dict[str, str], message: str
) -> None:
    """A missing, non-numeric or out-of-range run_id answers 400 INVALID_PARAMETER_VALUE naming it."""
    status, body = await api.call("GET", "runs/get", params=params)
    assert (400, "INVALID_PARAMETER_VALUE", message) == (status, body["error_code"], body["message"])


@pytest.mark.asyncio
async def test_malformed_json_body_answers_400_malformed_request(api: Api) -> None:
    """A body that is not JSON answers 400 MALFORMED_REQUEST."""
    status, body = await api.call(
        "POST", "runs/submit", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (400, "MALFORMED_REQUEST") == (status, body["error_code"])


# --- idempotency ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_same_idempotency_token_returns_the_same_run_even_after_it_failed(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """A retried submit with the token of a run that has since failed gets that failed run back."""
    first = await api.submit(task(result_state="FAILED"), idempotency_token="tok-1")
    clock.advance(60)
    second = await api.submit(task(), idempotency_token="tok-1")
    assert (first, ("TERMINATED", "FAILED"), 1) == (
        second,
        await api.life_cycle(second),
        emulator.counters().runs_submitted,
    )


@pytest.mark.asyncio
async def test_idempotency_token_longer_than_64_characters_is_refused(api: Api, emulator: Emulator) -> None:
    """A 65-character token answers 400 and creates nothing."""
    status, body = await api.call(
        "POST", "runs/submit", json={"tasks": [task()], "idempotency_token": "x" * 65}
    )
    assert (400, "INVALID_PARAMETER_VALUE", 0) == (
        status,
        body["error_code"],
        emulator.counters().runs_submitted,
    )


@pytest.mark.asyncio
async def test_token_of_a_deleted_run_is_an_error(api: Api, clock: ManualClock) -> None:
    """Once the run created with a token is deleted, submitting with that token answers 400."""
    run_id = await api.submit(idempotency_token="tok-deleted")
    clock.advance(10)
    await api.ok("POST", "runs/delete", json={"run_id": run_id})
    status, body = await api.call(
        "POST", "runs/submit", json={"tasks": [task()], "idempotency_token": "tok-deleted"}
    )
    assert (400, "INVALID_PARAMETER_VALUE") == (status, body["error_code"])


@pytest.mark.asyncio
async def test_run_now_honours_idempotency_tokens_too(api: Api, emulator: Emulator) -> None:
    """Two run-now calls with one token start one run."""
    job_id = (await api.ok("POST", "jobs/create", json={"name": "j", "tasks": [task()]}))["job_id"]
    answers = [
        await api.ok("POST", "run-now", json={"job_id": job_id, "idempotency_token": "t"}) for _ in range(2)
    ]
    assert (answers[0], 1) == (answers[1], emulator.counters().runs_submitted)


# --- runs/get paging (2.2) -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_runs_get_pages_tasks_at_100_in_2_2_and_not_in_2_1(api: Api) -> None:
    """A 150-task run: 2.2 answers 100 + 50 tasks with next_page_token only on the first page; 2.1 all 150."""
    tasks = [task(f"t{i}") for i in range(150)]
    job_id = (await api.ok("POST", "jobs/create", json={"name": "wide", "tasks": tasks}))["job_id"]
    run_id = (await api.ok("POST", "run-now", json={"job_id": job_id}))["run_id"]
    first = await api.get(run_id)
    second = await api.get(run_id, page_token=first["next_page_token"])
    whole = await api.ok("GET", "runs/get", params={"run_id": run_id}, version="2.1")
    keys = [t["task_key"] for t in first["tasks"] + second["tasks"]]
    assert (100, 50, False, [f"t{i}" for i in range(150)], 150) == (
        len(first["tasks"]),
        len(second["tasks"]),
        "next_page_token" in second,
        keys,
        len(whole["tasks"]),
    )


# --- runs/list -----------------------------------------------------------------------------------


async def _submit_many(api: Api, clock: ManualClock, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        ids.append(await api.submit())
        clock.advance(0.001)
    return ids


@pytest.mark.asyncio
async def test_runs_list_pages_newest_first_with_next_and_prev_tokens(api: Api, clock: ManualClock) -> None:
    """30 runs list as 25 + 5 newest first; the second page has prev_page_token back to the first."""
    ids = await _submit_many(api, clock, 30)
    first = await api.ok("GET", "runs/list", params={"limit": "25"})
    second = await api.ok("GET", "runs/list", params={"limit": "25", "page_token": first["next_page_token"]})
    back = await api.ok("GET", "runs/list", params={"limit": "25", "page_token": second["prev_page_token"]})
    listed = [r["run_id"] for r in first["runs"] + second["runs"]]
    assert (ids[::-1], True, False, "next_page_token" in second, [r["run_id"] for r in first["runs"]]) == (
        listed,
        first["has_more"],
        second["has_more"],
        False,
        [r["run_id"] for r in back["runs"]],
    )


@pytest.mark.parametrize(("limit", "expected"), [(None, 20), ("0", 25), ("25", 25), ("1", 1)])
@pytest.mark.asyncio
async def test_runs_list_limit_defaults_to_20_and_0_means_25(
    api: Api, clock: ManualClock, limit: str | None, expected: int
) -> None:
    """limit: default 20, 0 means the maximum (25)."""
    await _submit_many(api, clock, 30)
    params = {} if limit is None else {"limit": limit}
    assert expected == len((await api.ok("GET", "runs/list", params=params))["runs"])


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "26"},
        {"limit": "-1"},
        {"active_only": "true", "completed_only": "true"},
        {"run_type": "NOPE"},
    ],
)
@pytest.mark.asyncio
async def test_runs_list_refuses_bad_filters_with_400(api: Api, params: dict[str, str]) -> None:
    """An out-of-range limit, both active_only and completed_only, or an unknown run_type answer 400."""
    status, body = await api.call("GET", "runs/list", params=params)
    assert (400, "INVALID_PARAMETER_VALUE") == (status, body["error_code"])


@pytest.mark.asyncio
async def test_runs_list_filters_by_activity_type_job_and_start_time(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """active_only/completed_only, run_type, job_id and start_time_from/to select the matching runs."""
    done = await api.submit()
    clock.advance(10)
    running = await api.submit()
    foreign = emulator.add_foreign_runs(1, active=True)[0]
    job_id = (await api.get(running))["job_id"]

    async def ids(**params: Any) -> list[int]:
        body = await api.ok("GET", "runs/list", params={k: str(v) for k, v in params.items()})
        return [r["run_id"] for r in body.get("runs", [])]

    now_ms = round(clock() * 1000)
    assert (
        [running, foreign],
        [done],
        [running, done],
        [running],
        [running],
        [done, foreign],
    ) == (
        await ids(active_only="true"),
        await ids(completed_only="true"),
        await ids(run_type="SUBMIT_RUN"),
        await ids(job_id=job_id),
        await ids(start_time_from=now_ms - 5_000),
        await ids(start_time_to=now_ms - 1),
    )


@pytest.mark.asyncio
async def test_runs_list_start_time_bounds_taken_from_listed_start_times_include_those_runs(
    api: Api, emulator: Emulator, clock: ManualClock
) -> None:
    """Runs started at fractions of a millisecond: completed_only bounded by start_time_from/to equal
    to the start_time values the listing showed returns exactly those runs, newest first, paged by
    limit (the bounds compare the same rounded milliseconds the replies show)."""
    clock.advance(0.0017)
    ids = []
    for _ in range(3):
        ids.append(await api.submit())
        clock.advance(0.0106)
    for run_id in ids:
        emulator.finish_run(run_id)
    listed = (await api.ok("GET", "runs/list", params={"completed_only": "true"}))["runs"]
    starts = {r["run_id"]: r["start_time"] for r in listed}
    window = {"completed_only": "true", "limit": "2"}
    window.update(start_time_from=str(starts[ids[0]]), start_time_to=str(starts[ids[2]]))

    first = await api.ok("GET", "runs/list", params=window)
    second = await api.ok("GET", "runs/list", params={**window, "page_token": first["next_page_token"]})
    edge = {**window, "start_time_from": str(starts[ids[1]]), "start_time_to": str(starts[ids[1]])}

    assert [ids[2], ids[1]] == [r["run_id"] for r in first["runs"]]
    assert ([ids[0]], False) == ([r["run_id"] for r in second["runs"]], second["has_more"])
    assert [ids[1]] == [r["run_id"] for r in (await api.ok("GET", "runs/list", params=edge))["runs"]]


@pytest.mark.asyncio
async def test_runs_list_omits_runs_when_empty_and_tasks_unless_expanded(api: Api) -> None:
    """An empty list has no "runs" key; tasks appear only with expand_tasks=true."""
    empty = await api.ok("GET", "runs/list")
    await api.submit()
    plain = await api.ok("GET", "runs/list")
    expanded = await api.ok("GET", "runs/list", params={"expand_tasks": "true"})
    assert ({"has_more": False}, False, True) == (
        empty,
        "tasks" in plain["runs"][0],
        "tasks" in expanded["runs"][0],
    )


# --- jobs ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_jobs_list_filters_by_exact_name_and_run_now_starts_a_job_run(
    api: Api, clock: ManualClock
) -> None:
    """jobs/list?name= finds the job; run-now starts a JOB_RUN named after it with its job_id."""
    await api.ok("POST", "jobs/create", json={"name": "other", "tasks": [task()]})
    job_id = (await api.ok("POST", "jobs/create", json={"name": "nightly", "tasks": [task()]}))["job_id"]
    found = await api.ok("GET", "jobs/list", params={"name": "nightly"})
    started = await api.ok("POST", "run-now", json={"job_id": job_id, "job_parameters": {"day": "mon"}})
    run = await api.get(started["run_id"])
    assert (
        [job_id],
        "JOB_RUN",
        "nightly",
        job_id,
        started["run_id"],
        [{"name": "day", "default": None, "value": "mon"}],
    ) == (
        [j["job_id"] for j in found["jobs"]],
        run["run_type"],
        run["run_name"],
        run["job_id"],
        started["number_in_job"],
        run["job_parameters"],
    )


@pytest.mark.asyncio
async def test_jobs_get_and_run_now_of_an_unknown_job_say_job_does_not_exist(api: Api) -> None:
    """jobs/get and run-now of an unknown job answer 400 "Job N does not exist."."""
    get = await api.call("GET", "jobs/get", params={"job_id": "99"})
    run = await api.call("POST", "run-now", json={"job_id": 99})
    expected = (400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 99 does not exist."})
    assert (expected, expected) == (get, run)


# --- robustness: no request makes a 500 ----------------------------------------------------------

_BAD_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    1.5,
    2**64,
    -(2**64),
    "",
    "x" * 10_000,
    [],
    {},
    [1, "a"],
    {"a": {"b": []}},
]
_FIELDS = [
    "run_id",
    "job_id",
    "tasks",
    "idempotency_token",
    "timeout_seconds",
    "limit",
    "offset",
    "page_token",
    "active_only",
    "run_type",
    "start_time_from",
    "queue",
    "job_parameters",
    "notebook_params",
    "python_params",
    "rerun_tasks",
    "rerun_all_failed_tasks",
    "latest_repair_id",
    "name",
    "new_settings",
    "fields_to_remove",
    "all_queued_runs",
    "include_history",
    "expand_tasks",
]
_ROUTES = [
    ("POST", "runs/submit"),
    ("GET", "runs/get"),
    ("GET", "runs/list"),
    ("POST", "runs/cancel"),
    ("POST", "runs/cancel-all"),
    ("GET", "runs/get-output"),
    ("POST", "runs/repair"),
    ("POST", "runs/delete"),
    ("POST", "run-now"),
    ("POST", "jobs/create"),
    ("GET", "jobs/get"),
    ("GET", "jobs/list"),
    ("POST", "jobs/reset"),
    ("POST", "jobs/update"),
    ("POST", "jobs/delete"),
]
_RAW_BODIES = [
    b"{",
    b"[]",
    b"null",
    b"42",
    b'"text"',
    b"\xff\xfe",
    b"[" * 5000 + b"]" * 5000,
    b'{"run_id": NaN}',
]
_BAD_TASKS: list[Any] = [
    [1],
    [{}],
    [{"task_key": 5}],
    [{"task_key": "a"}, {"task_key": "a"}],
    [{"task_key": "a", "notebook_task": "nope"}],
    [{"task_key": "a", "notebook_task": {"base_parameters": {"emulator.duration_seconds": "soon"}}}],
    [{"task_key": "a", "notebook_task": {"base_parameters": {"emulator.result_state": "MAYBE"}}}],
    [{"task_key": "a", "notebook_task": {"base_parameters": {"emulator.duration_seconds": "inf"}}}],
    [{"task_key": "a", "spark_python_task": {"parameters": "emulator.error=x"}}],
    [{"task_key": "a", "notebook_task": {"base_parameters": {"emulator.fail_attempts": "-1"}}}],
    [{"task_key": "a", "notebook_task": {"base_parameters": {"emulator.fail_attempts": "once"}}}],
    [{"task_key": "a", "notebook_task": {"base_parameters": {"emulator.fail_attempts": True}}}],
    [{"task_key": "a", "notebook_task": {}, "max_retries": -2}],
    [{"task_key": "a", "notebook_task": {}, "max_retries": "3"}],
    [{"task_key": "a", "notebook_task": {}, "min_retry_interval_millis": -1}],
    [{"task_key": "a", "notebook_task": {}, "retry_on_timeout": "yes"}],
    [{"task_key": f"t{i}"} for i in range(101)],
]


@pytest.mark.asyncio
async def test_no_malformed_request_to_any_endpoint_produces_a_500(api: Api, clock: ManualClock) -> None:
    """Wrong types, huge numbers, missing fields and broken JSON get 4xx JSON errors, never a 500.

    Every bad value goes into every field, on every route, as a JSON body and (for GET) as a query
    string; raw broken bodies go to every route; odd task lists go to submit and jobs/create.
    """
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    real_run = await api.submit(task("a"), task("b"))
    clock.advance(10)

    async def probe(method: str, endpoint: str, **kwargs: Any) -> None:
        status, body = await api.call(method, endpoint, **kwargs)
        statuses[status // 100 * 100] += 1
        shaped = isinstance(body, dict) and bool(body.get("error_code")) and bool(body.get("message"))
        if status >= 500 or (status >= 400 and not shaped):
            failures.append(f"{method} {endpoint} {kwargs} -> {status} {body}")

    for (method, endpoint), field, value in itertools.product(_ROUTES, _FIELDS, _BAD_VALUES):
        await probe(
            method, endpoint, json={field: value, "run_id": real_run} if field != "run_id" else {field: value}
        )
        if method == "GET" and isinstance(value, str | int):
            await probe(method, endpoint, params={field: str(value)})
    for (method, endpoint), raw in itertools.product(_ROUTES, _RAW_BODIES):
        await probe(method, endpoint, data=raw, headers={"Content-Type": "application/json"})
    for endpoint, tasks in itertools.product(["runs/submit", "jobs/create"], _BAD_TASKS):
        await probe("POST", endpoint, json={"tasks": tasks})
    print("\n".join(f[:300] for f in failures))  # shown by pytest when the test fails
    # The probes did reach the handlers: most answers are 400s, none 500.
    assert ([], {200, 400}) == (failures, set(statuses))

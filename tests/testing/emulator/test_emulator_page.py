"""The run page behind ``run_page_url``, over real HTTP: what it shows, and what it must not do.

The page's script (it reads the URL's fragment) runs in a real browser in
``tests/e2e/test_run_page_browser.py``; here the server's side is read as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from emulator_testkit import Api, task

from resumable_triggers.testing import Emulator, ManualClock
from resumable_triggers.testing.emulator._run_view import RUNS_LIST_LIMIT


@dataclass
class Page(HTMLParser):
    """An HTML page or fragment, read the way a test asks about it: its tables (by class), as rows of
    cell texts; every element's attributes; its text."""

    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    elements: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    text: str = ""
    _table: str | None = None
    _row: list[str] | None = None
    _cell: list[str] | None = None

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def of(cls, html: str) -> Page:
        page = cls()
        page.feed(html)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.elements.append((tag, values))
        if tag == "table":
            self._table = values.get("class", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._cell is not None:
            self._cell.append(data)

    def first(self, tag: str, **attrs: str) -> dict[str, str]:
        for name, values in self.elements:
            if name == tag and all(
                values.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()
            ):
                return values
        raise AssertionError(f"no <{tag}> with {attrs}")


async def fetch(api: Api, path: str) -> tuple[int, str, Page]:
    """GET a page without credentials: (status, Content-Type, the page)."""
    async with api.session.get(api.url + path) as response:
        return response.status, response.content_type, Page.of(await response.text())


async def run_fragment(api: Api, run_id: int) -> Page:
    status, _, page = await fetch(api, f"/__emulator/ui/runs/{run_id}")
    assert 200 == status
    return page


# --- the link ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_page_url_answers_the_page_whose_script_reads_the_fragment(api: Api) -> None:
    """The run_page_url runs/get answers opens an HTML page (the fragment never reaches the server):
    its script reads location.hash and fetches the run's fragment; it lists the workspace's runs."""
    run_id = await api.submit(run_name="nightly")
    url = (await api.get(run_id))["run_page_url"]

    async with api.session.get(url) as response:
        status, content_type, html = response.status, response.content_type, await response.text()
    page = Page.of(html)

    assert (200, "text/html") == (status, content_type)
    assert "location.hash" in html
    assert "/__emulator/ui/runs" in html
    assert [str(run_id), "nightly"] == page.tables["runs"][1][:2]
    assert f"#job/{(await api.get(run_id))['job_id']}/run/{run_id}" == page.first("a")["href"]


@pytest.mark.asyncio
async def test_a_link_naming_another_workspace_is_flagged(api: Api) -> None:
    """``?o=`` naming a workspace other than the emulator's puts a warning on the page."""
    _, _, named_right = await fetch(api, "/?o=1234567890123456")
    _, _, named_wrong = await fetch(api, "/?o=42")

    assert "This link names workspace" not in named_right.text
    assert "This link names workspace 42; this emulator is workspace 1234567890123456." in named_wrong.text


# --- one run -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_finished_run_shows_its_state_its_tasks_and_their_errors(
    api: Api, clock: ManualClock
) -> None:
    """A finished run with a failed task: FAILED, the run's message, each task's state and error."""
    run_id = await api.submit(
        task("extract"), task("load", result_state="FAILED", error="Table not found"), run_name="etl"
    )
    clock.advance(10)

    page = await run_fragment(api, run_id)
    article = page.first("article")
    tasks = {row[0]: (row[3], row[4]) for row in page.tables["tasks"][1:]}

    assert ("FAILED", "false") == (article["data-state"], article["data-active"])
    assert "Task load failed with message: Table not found." in page.text
    assert {"extract": ("SUCCESS", ""), "load": ("FAILED", "Table not found")} == tasks


@pytest.mark.asyncio
async def test_an_active_run_says_so_and_draws_its_timeline_up_to_now(api: Api, clock: ManualClock) -> None:
    """A RUNNING run is marked active (the script fetches it again) and its bar reaches now."""
    run_id = await api.submit(task("main"))
    clock.advance(5)

    page = await run_fragment(api, run_id)

    assert ("RUNNING", "true") == (page.first("article")["data-state"], page.first("article")["data-active"])
    assert "still running" in page.text
    assert "left:0.00%;width:100.00%" == page.first("span", class_="seg active")["style"]


@pytest.mark.asyncio
async def test_the_timeline_draws_setup_execution_and_cleanup_in_proportion(
    api: Api, clock: ManualClock
) -> None:
    """A finished 10-second run spends 10 % setting up, 80 % running, 10 % cleaning up: three bars."""
    run_id = await api.submit(task("main"))
    clock.advance(10)

    page = await run_fragment(api, run_id)
    bars = [
        (a["class"], a["style"]) for tag, a in page.elements if tag == "span" and "seg" in a.get("class", "")
    ]

    assert [
        ("seg setup", "left:0.00%;width:10.00%"),
        ("seg execution", "left:10.00%;width:80.00%"),
        ("seg cleanup", "left:90.00%;width:10.00%"),
    ] == bars


@pytest.mark.asyncio
async def test_a_repaired_run_lists_its_original_attempt_and_the_repair(api: Api, clock: ManualClock) -> None:
    """After a repair of the failed task: the repair history has ORIGINAL (FAILED, both task runs) and
    REPAIR (its id, SUCCESS, the new task run); the tasks table shows the rerun's attempt 1."""
    run_id = await api.submit(task("ok"), task("flaky", result_state="FAILED"))
    clock.advance(10)
    original = {t["task_key"]: t["run_id"] for t in (await api.get(run_id))["tasks"]}
    repair = await api.ok(
        "POST",
        "runs/repair",
        json={
            "run_id": run_id,
            "rerun_tasks": ["flaky"],
            "notebook_params": {"emulator.result_state": "SUCCESS"},
        },
    )
    clock.advance(10)
    rerun = {t["task_key"]: t["run_id"] for t in (await api.get(run_id))["tasks"]}["flaky"]

    page = await run_fragment(api, run_id)
    history = [(row[0], row[1], row[2], set(row[5].split(", "))) for row in page.tables["repairs"][1:]]
    attempts = {row[0]: row[2] for row in page.tables["tasks"][1:]}

    assert [
        ("ORIGINAL", "—", "FAILED", {str(original["ok"]), str(original["flaky"])}),
        ("REPAIR", str(repair["repair_id"]), "SUCCESS", {str(rerun)}),
    ] == history
    assert {"ok": "0", "flaky": "1"} == attempts


@pytest.mark.asyncio
async def test_a_retried_task_shows_one_row_per_attempt(api: Api, clock: ManualClock) -> None:
    """A task that fails once with max_retries=1: while it waits for the retry the run is active and
    the table has attempt 0 FAILED and attempt 1 WAITING_FOR_RETRY; at the end, FAILED then SUCCESS,
    and the timeline has a lane for attempt 1."""
    spec = {**task("flaky", fail_attempts="1"), "max_retries": 1, "min_retry_interval_millis": 5000}
    run_id = await api.submit(spec)
    clock.advance(12)
    waiting = await run_fragment(api, run_id)
    clock.advance(20)
    done = await run_fragment(api, run_id)

    def rows(page: Page) -> list[tuple[str, str, str]]:
        return [(row[0], row[2], row[3]) for row in page.tables["tasks"][1:]]

    assert ("true", [("flaky", "0", "FAILED"), ("flaky", "1", "WAITING_FOR_RETRY")]) == (
        waiting.first("article")["data-active"],
        rows(waiting),
    )
    assert ([("flaky", "0", "FAILED"), ("flaky", "1", "SUCCESS")], True) == (
        rows(done),
        "flaky #1" in done.text,
    )


@pytest.mark.asyncio
async def test_a_run_never_repaired_says_so(api: Api, clock: ManualClock) -> None:
    """A run with only its original attempt has no repair table, and the page says why."""
    run_id = await api.submit(task("main"))
    clock.advance(10)

    page = await run_fragment(api, run_id)

    assert "repairs" not in page.tables
    assert "Not repaired: the run has only its original attempt." in page.text


@pytest.mark.asyncio
async def test_a_task_runs_link_opens_its_parent_run_with_the_task_picked_out(api: Api) -> None:
    """A task's run_page_url names the task run's id: its page is the parent run's, that task marked."""
    run_id = await api.submit(task("a"), task("b"))
    task_b = (await api.get(run_id))["tasks"][1]["run_id"]

    page = await run_fragment(api, task_b)

    article = page.first("article")
    assert (str(task_b), str(run_id)) == (article["data-run-id"], article["data-parent-run-id"])
    assert "focus" == page.first("tr", data_task_key="b").get("class")
    assert "class" not in page.first("tr", data_task_key="a")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "/__emulator/ui/runs/911999999999999",
            "Run 911999999999999 does not exist in this workspace (never submitted, deleted or expired).",
        ),
        ("/__emulator/ui/runs/nope", "No emulator page at /__emulator/ui/runs/nope."),
        ("/__emulator/ui/elsewhere", "No emulator page at /__emulator/ui/elsewhere."),
    ],
)
@pytest.mark.asyncio
async def test_an_unknown_run_or_page_answers_404_with_a_page_that_says_so(
    api: Api, path: str, message: str
) -> None:
    """A run id the workspace does not hold, or a path that is no page, answers an HTML 404 saying so."""
    status, content_type, page = await fetch(api, path)

    assert (404, "text/html", message) == (status, content_type, page.text)


@pytest.mark.asyncio
async def test_a_deleted_run_is_gone_from_its_page_and_the_list(api: Api, clock: ManualClock) -> None:
    """After runs/delete the run's page answers 404 and the runs list no longer has it."""
    run_id = await api.submit(task("main"))
    clock.advance(10)
    await api.ok("POST", "runs/delete", json={"run_id": run_id})

    status, _, page = await fetch(api, f"/__emulator/ui/runs/{run_id}")
    _, _, listed = await fetch(api, "/__emulator/ui/runs")

    assert 404 == status
    assert f"Run {run_id} does not exist in this workspace" in page.text
    assert "No runs yet." in listed.text


# --- the runs list -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_runs_list_is_newest_first_and_says_how_many_it_leaves_out(
    api: Api, emulator: Emulator
) -> None:
    """More runs than the list shows: the newest first, and a heading saying how many there are."""
    emulator.add_foreign_runs(RUNS_LIST_LIMIT + 5)
    newest = await api.submit(run_name="mine")

    _, _, page = await fetch(api, "/__emulator/ui/runs")
    rows = page.tables["runs"][1:]

    assert RUNS_LIST_LIMIT == len(rows)
    assert [str(newest), "mine"] == rows[0][:2]
    assert f"Runs in this workspace (newest {RUNS_LIST_LIMIT} of {RUNS_LIST_LIMIT + 6})" in page.text


# --- what the page must not do -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_page_needs_no_credentials_and_is_not_api_traffic(api: Api, emulator: Emulator) -> None:
    """Without an Authorization header the page answers 200; it is not counted or logged, and a fault
    armed for every endpoint is left for the API request it was meant for."""
    run_id = await api.submit()
    emulator.inject_fault(endpoint=None, kind="http_error", status=503)
    before = (emulator.counters(), len(emulator.request_log))

    statuses = [
        (await fetch(api, path))[0] for path in ("/", "/__emulator/ui/runs", f"/__emulator/ui/runs/{run_id}")
    ]
    after = (emulator.counters(), len(emulator.request_log))
    faulted, _ = await api.call("GET", "runs/get", params={"run_id": str(run_id)})

    assert [200, 200, 200] == statuses
    assert before == after
    assert 503 == faulted


@pytest.mark.asyncio
async def test_the_page_fetches_nothing_from_elsewhere(api: Api, clock: ManualClock) -> None:
    """Offline: every href and src of the page and of a run's fragment is on the emulator itself
    (a path, a fragment, or a data: URL), so nothing is fetched from the internet."""
    run_id = await api.submit(task("main"))
    clock.advance(10)
    pages = [
        (await fetch(api, "/"))[2],
        await run_fragment(api, run_id),
        (await fetch(api, "/__emulator/ui/runs"))[2],
    ]

    references: list[Any] = [
        value
        for page in pages
        for _, attrs in page.elements
        for name, value in attrs.items()
        if name in ("href", "src")
    ]

    assert references
    assert [] == [ref for ref in references if not ref.startswith(("/", "#", "data:"))]


@pytest.mark.asyncio
async def test_names_and_errors_are_escaped_not_rendered_as_html(api: Api, clock: ManualClock) -> None:
    """A run name or error holding markup is shown as text: no element of the run's making appears."""
    evil = "<img src=x onerror=alert(1)>"
    run_id = await api.submit(task("main", result_state="FAILED", error=evil), run_name=evil)
    clock.advance(10)

    pages = [await run_fragment(api, run_id), (await fetch(api, "/__emulator/ui/runs"))[2]]

    assert [[], []] == [[tag for tag, _ in page.elements if tag == "img"] for page in pages]
    assert all(evil in page.text for page in pages)

"""A real Chromium for the end-to-end tests, and the two UIs as a person walks them.

Debian's ``chromium`` (``scripts/_bootstrap.sh`` apt-installs it), driven by the ``playwright`` package;
playwright's own browser download cannot work offline, so ``executable_path`` points at the system's::

    Browser          one headless Chromium, a fresh profile; every page it opens is screenshotted
    ├── AirflowUi    home -> DAG run -> task instance -> Details tab -> "See Databricks Job Run"
    └── RunPage      the emulator's page that link opens, waited on until it shows a run

Every wait is on something the page shows (an element, an attribute), never a bare sleep. Requests
anywhere but 127.0.0.1 are refused and remembered, so a test can say the pages fetched nothing from
the internet.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from playwright.sync_api import BrowserContext, Page, Playwright, Route, sync_playwright

CHROMIUM = os.environ.get("RESUMABLE_TRIGGERS_CHROMIUM", "/usr/bin/chromium")
# Known to work in a container as root with no GPU and no network: no sandbox, no GPU, no QUIC,
# and none of Chromium's own calls home.
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Each step's ceiling (ms); generous because the machine may be shared. Steps end as soon as they can.
STEP_MILLISECONDS = 90_000
LINK_NAME = "See Databricks Job Run"


@dataclass
class Browser:
    """A headless Chromium with a fresh profile in ``artefacts``, where its screenshots go too."""

    artefacts: Path
    screenshots: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # requests to anywhere but 127.0.0.1
    _playwright: Playwright | None = None
    _context: BrowserContext | None = None

    def __enter__(self) -> Browser:
        if not Path(CHROMIUM).exists():
            raise RuntimeError(
                f"{CHROMIUM} is missing: run scripts/_bootstrap.sh as root, or apt-get install chromium"
            )
        self._playwright = sync_playwright().start()
        self._context = self._playwright.chromium.launch_persistent_context(
            str(self.artefacts / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=list(LAUNCH_ARGS),
            viewport={"width": 1400, "height": 1000},
        )
        self._context.set_default_timeout(STEP_MILLISECONDS)
        self._context.route("**/*", self._only_loopback)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._context is not None:
            self._context.close()
        if self._playwright is not None:
            self._playwright.stop()
        if self.screenshots:
            print(f"\nscreenshots of {self.artefacts.name}: {self.artefacts}")

    @property
    def context(self) -> BrowserContext:
        assert self._context is not None, "use Browser as a context manager"
        return self._context

    def _only_loopback(self, route: Route) -> None:
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def new_page(self) -> Page:
        return self.context.new_page()

    def screenshot(self, page: Page, name: str) -> Path:
        path = self.artefacts / f"{len(self.screenshots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.screenshots.append(path)
        return path


@dataclass
class AirflowUi:
    """Airflow 3's React UI at ``base_url``, walked the way a person finds a task's Databricks run."""

    browser: Browser
    base_url: str
    page: Page = field(init=False)

    def __post_init__(self) -> None:
        self.page = self.browser.new_page()

    def log_in(self) -> dict[str, Any]:
        """Open the home page; return who the UI says is logged in.

        With ``SIMPLE_AUTH_MANAGER_ALL_ADMINS`` (the harness's setting) there is no login form: the
        api-server's middleware makes every request an admin's, so logging in is opening the UI."""
        with self.page.expect_response(lambda r: r.url.endswith("/ui/auth/me")) as me:
            self.page.goto(self.base_url + "/")
        self.page.get_by_role("link", name="Dags").first.wait_for()
        self.browser.screenshot(self.page, "airflow-home")
        if me.value.status != 200 or "/login" in self.page.url:
            raise AssertionError(f"the UI asked for a login: {me.value.status} at {self.page.url}")
        me_body: dict[str, Any] = me.value.json()
        return me_body

    def open_dag_run(self, dag_id: str, run_id: str) -> None:
        self.page.goto(f"{self.base_url}/dags/{_q(dag_id)}/runs/{_q(run_id)}")
        self.page.get_by_text("Task Instances", exact=False).first.wait_for()
        self.browser.screenshot(self.page, "dag-run")

    def open_task(self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> None:
        """Click the task instance (of ``map_index``, for a mapped task) in the DAG run's list."""
        href = f"/dags/{_q(dag_id)}/runs/{_q(run_id)}/tasks/{_q(task_id)}"
        if map_index is not None:
            href += f"/mapped/{map_index}"
        self.page.locator(f'a[href="{href}"]').first.click()
        self.page.wait_for_url(re.compile(re.escape(href) + "$"))
        self.page.get_by_role("link", name="Details", exact=True).click()
        self.page.get_by_text("Extra Links", exact=True).wait_for()
        self.browser.screenshot(self.page, "task-details")

    def databricks_link(self) -> tuple[str, str]:
        """The "See Databricks Job Run" button's (href, target)."""
        link = self.page.get_by_role("link", name=LINK_NAME)
        link.wait_for()
        return link.get_attribute("href") or "", link.get_attribute("target") or ""

    def follow_databricks_link(self) -> Page:
        """Click the button; the UI opens links to other origins in a new tab: return that tab."""
        with self.browser.context.expect_page() as opened:
            self.page.get_by_role("link", name=LINK_NAME).click()
        tab = opened.value
        tab.wait_for_load_state()
        return tab


@dataclass
class RunPage:
    """The emulator's run page in one tab: what it shows of the run its URL's fragment names."""

    browser: Browser
    page: Page

    def wait_for(
        self, run_id: int, *, active: bool | None = None, state: str | None = None
    ) -> dict[str, str]:
        """Wait until the page shows run ``run_id`` (active or not, in ``state``); return what its
        article says of it: ``{"runId", "parentRunId", "state", "active"}``."""
        selector = f'#run article[data-run-id="{run_id}"]'
        if active is not None:
            selector += f'[data-active="{str(active).lower()}"]'
        if state is not None:
            selector += f'[data-state="{state}"]'
        article = self.page.locator(selector)
        article.wait_for()
        values: dict[str, str] = article.evaluate("a => Object.assign({}, a.dataset)")
        return values

    def text(self) -> str:
        return self.page.locator("#run").inner_text()

    def screenshot(self, name: str) -> Path:
        return self.browser.screenshot(self.page, name)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")

"""In a real Chromium: Airflow's "See Databricks Job Run" link opens the emulator's page of that run.

The first test drives the emulator's page alone (its script reads the link's fragment, follows an
active run, switches runs from the list); the others walk Airflow's own UI on the real deployment:
home, the DAG run, the task instance, its Details tab, the extra link, the tab it opens. Screenshots
of every step are kept in each test's ``tmp_path`` (the path is printed; run with ``-s`` or ``-rP``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_testkit import AirflowUi, Browser, RunPage
from e2e_testkit import WAIT_SECONDS, DatabricksE2E

from resumable_triggers.testing import EmulatorFactory, ManualClock

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with Browser(tmp_path) as chromium:
        yield chromium
    assert [] == chromium.refused, "a page fetched something from outside 127.0.0.1"


def _submit(url: str, token: str, spec: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"{url}/api/2.2/jobs/runs/submit",
        data=json.dumps(spec).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["run_id"])


def _notebook(key: str, **emulator: str) -> dict[str, Any]:
    parameters = {f"emulator.{name}": value for name, value in emulator.items()}
    return {"task_key": key, "notebook_task": {"notebook_path": "/Shared/etl", "base_parameters": parameters}}


def test_the_run_page_reads_the_fragment_follows_an_active_run_and_switches_runs(
    browser: Browser, databricks_emulator_factory: EmulatorFactory
) -> None:
    """Opened at a run_page_url, the page shows the run the fragment names; while the run is active it
    fetches it again, so it shows the run's end without a reload; a click on another run in the list
    shows that one; and every request it made went to the emulator."""
    clock = ManualClock()
    served = databricks_emulator_factory(run_seconds=10.0, clock=clock)
    failed = _submit(
        served.url,
        served.token,
        {"run_name": "nightly", "tasks": [_notebook("load", result_state="FAILED", error="Table not found")]},
    )
    clock.advance(10)
    active = _submit(served.url, served.token, {"run_name": "hourly", "tasks": [_notebook("sync")]})
    page_url = served.emulator.get_run(active)["run_page_url"]
    requested: list[str] = []

    tab = RunPage(browser, browser.new_page())
    tab.page.on("request", lambda request: requested.append(request.url))
    tab.page.goto(page_url)
    shown_active = tab.wait_for(active, active=True)
    tab.screenshot("active-run")
    clock.advance(10)
    shown_done = tab.wait_for(active, active=False)
    tab.page.locator(f'#runs a[href$="/run/{failed}"]').click()
    shown_failed = tab.wait_for(failed, state="FAILED")
    tab.screenshot("failed-run")

    assert "PENDING" == shown_active["state"]
    assert "SUCCESS" == shown_done["state"]
    assert ("FAILED", "false") == (shown_failed["state"], shown_failed["active"])
    assert "Table not found" in tab.text()
    assert tab.page.url.endswith(f"/run/{failed}")
    assert [] == [url for url in requested if not url.startswith((served.url + "/", "data:"))]


@pytest.mark.timeout(300)
def test_the_link_of_a_finished_task_opens_its_run_in_its_final_state(
    browser: Browser, dbx: DatabricksE2E
) -> None:
    """After the task succeeded: DAG run -> task -> Details -> "See Databricks Job Run" opens, in a
    new tab, the emulator's page of the run the task pushed (same URL, same run id), TERMINATED with
    SUCCESS."""
    dag_run = dbx.start("e2e_dbx_deferred")
    dag_run.wait_for_deferred_and_watched()
    run_id = dag_run.xcom("run_id")
    dag_run.finish_run(run_id, in_seconds=1.0)
    dag_run.wait_for_state("success")
    pushed_url = dag_run.xcom("run_page_url")

    ui = AirflowUi(browser, dbx.airflow.base_url)
    user = ui.log_in()
    ui.open_dag_run(dag_run.dag_id, dag_run.run_id)
    ui.open_task(dag_run.dag_id, dag_run.run_id, "etl")
    href, target = ui.databricks_link()
    tab = RunPage(browser, ui.follow_databricks_link())
    shown = tab.wait_for(run_id, active=False)
    tab.screenshot("run-page-final")

    assert "Anonymous" == user["username"]
    assert (pushed_url, "_blank") == (href, target)
    assert pushed_url == tab.page.url
    assert ("SUCCESS", str(run_id)) == (shown["state"], shown["parentRunId"])
    assert f"e2e {dag_run.run_id}" in tab.text()


@pytest.mark.timeout(300)
def test_the_link_of_a_deferred_task_opens_its_active_run_and_the_page_follows_it_to_the_end(
    browser: Browser, dbx: DatabricksE2E
) -> None:
    """While the task is deferred the link is already there (the URL was pushed before deferring); it
    opens the run, active; when the workspace ends the run, the open page shows SUCCESS, and the
    task succeeds."""
    dag_run = dbx.start("e2e_dbx_deferred")
    dag_run.wait_for_deferred_and_watched()
    run_id = dag_run.xcom("run_id")

    ui = AirflowUi(browser, dbx.airflow.base_url)
    ui.log_in()
    ui.open_dag_run(dag_run.dag_id, dag_run.run_id)
    ui.open_task(dag_run.dag_id, dag_run.run_id, "etl")
    href, _ = ui.databricks_link()
    state_with_link = dag_run.ti()["state"]
    tab = RunPage(browser, ui.follow_databricks_link())
    shown_active = tab.wait_for(run_id, active=True)
    tab.screenshot("run-page-while-deferred")
    dag_run.finish_run(run_id, in_seconds=1.0)
    shown_done = tab.wait_for(run_id, active=False)
    tab.screenshot("run-page-after-the-end")
    final = dag_run.wait_for_state("success", "failed")

    assert "deferred" == state_with_link
    assert dag_run.xcom("run_page_url") == href
    assert shown_active["state"] in ("PENDING", "RUNNING")
    assert "SUCCESS" == shown_done["state"]
    assert "success" == final["state"]


def _mapped_ti(dbx: DatabricksE2E, run_id: str, map_index: int, suffix: str = "") -> Any:
    path = f"/dags/e2e_dbx_mapped/dagRuns/{run_id}/taskInstances/etl"
    if suffix:
        return dbx.airflow.rest.api("GET", f"{path}/{suffix}", params={"map_index": map_index})
    return dbx.airflow.rest.api("GET", f"{path}/{map_index}")


@pytest.mark.timeout(300)
def test_a_mapped_tasks_link_opens_the_run_of_its_own_map_index(browser: Browser, dbx: DatabricksE2E) -> None:
    """In a task mapped over two notebooks, map index 1's link is its own run's (not index 0's): DAG
    run -> index 1 -> Details -> the link opens the run index 1 submitted."""
    dag_run = dbx.start("e2e_dbx_mapped")

    def deferred_runs() -> dict[int, int] | None:
        tis = [_mapped_ti(dbx, dag_run.run_id, index) for index in (0, 1)]
        if any(ti["state"] != "deferred" for ti in tis):
            return None
        return {i: _mapped_ti(dbx, dag_run.run_id, i, "xcomEntries/run_id")["value"] for i in (0, 1)}

    run_ids = dbx.airflow.wait_for("both map indexes to defer", deferred_runs, timeout_seconds=WAIT_SECONDS)
    pushed_url = _mapped_ti(dbx, dag_run.run_id, 1, "xcomEntries/run_page_url")["value"]

    ui = AirflowUi(browser, dbx.airflow.base_url)
    ui.log_in()
    ui.open_dag_run(dag_run.dag_id, dag_run.run_id)
    ui.open_task(dag_run.dag_id, dag_run.run_id, "etl", map_index=1)
    href, _ = ui.databricks_link()
    tab = RunPage(browser, ui.follow_databricks_link())
    shown = tab.wait_for(run_ids[1])
    tab.screenshot("run-page-map-index-1")
    for run_id in run_ids.values():
        dag_run.finish_run(run_id, in_seconds=1.0)
    dbx.airflow.rest.wait_for_dag_run_state(
        dag_run.dag_id, dag_run.run_id, states={"success"}, timeout_seconds=WAIT_SECONDS
    )

    assert run_ids[0] != run_ids[1]
    assert pushed_url == href
    assert str(run_ids[1]) == shown["parentRunId"]
    assert f"e2e {dag_run.run_id} #1" in tab.text()

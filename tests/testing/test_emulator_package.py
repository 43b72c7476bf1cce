"""The public surface of resumable_triggers.testing and its pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import resumable_triggers.testing as testing
from resumable_triggers.testing import Emulator


def test_all_is_sorted_and_names_exactly_the_public_objects() -> None:
    """__all__ is sorted, and every public (non-underscore, non-module) name is in it."""
    public = {
        name
        for name, value in vars(testing).items()
        if not name.startswith("_") and not isinstance(value, type(os)) and name != "annotations"
    }
    assert (sorted(testing.__all__), set(testing.__all__)) == (testing.__all__, public)


def test_importing_the_package_and_plugin_does_not_import_airflow() -> None:
    """Airflow reads its configuration on import: the plugin, loaded by pytest first, must not import it."""
    code = "import sys, resumable_triggers.testing, resumable_triggers.testing._pytest_plugin; "
    code += "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]" == result.stdout.strip()


def test_pytest_plugin_fixtures_serve_an_emulator_and_restore_the_environment(tmp_path: Path) -> None:
    """In a fresh pytest run, databricks_emulator_env lets the provider hook submit a run, and the
    variables it set are gone in the next test."""
    (tmp_path / "test_uses_plugin.py").write_text(
        textwrap.dedent(
            """
            import os

            def test_hook_reaches_the_emulator(databricks_emulator_env):
                from airflow.providers.databricks.hooks.databricks import DatabricksHook

                run_id = DatabricksHook().submit_run({"tasks": [{"task_key": "a", "notebook_task": {}}]})
                assert [run_id] == [r["run_id"] for r in databricks_emulator_env.emulator.runs()]
                assert databricks_emulator_env.url == os.environ["DATABRICKS_HOST"]

            def test_environment_is_restored():
                names = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "AIRFLOW_CONN_DATABRICKS_DEFAULT")
                assert [] == [n for n in names if n in os.environ]

            def test_plain_fixture_has_url_and_token(databricks_emulator):
                assert databricks_emulator.token == databricks_emulator.emulator.token
                assert databricks_emulator.url.startswith("http://127.0.0.1:")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "AIRFLOW_CONN_"))}
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__UNIT_TEST_MODE": "True"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=110,
    )
    assert (0, "3 passed") == (result.returncode, result.stdout.strip().splitlines()[-1].split(" in ")[0]), (
        result.stdout
    )


@pytest.mark.asyncio
async def test_make_app_works_under_aiohttp_test_server_with_its_own_url() -> None:
    """The bare aiohttp app can be served by aiohttp's TestServer; run_page_url then uses that host."""
    emulator = Emulator()
    async with TestServer(emulator.make_app(), host="127.0.0.1") as server, TestClient(server) as client:
        headers = {"Authorization": f"Bearer {emulator.token}"}
        submitted = await client.post(
            "/api/2.2/jobs/runs/submit", json={"tasks": [{"task_key": "a"}]}, headers=headers
        )
        run_id = (await submitted.json())["run_id"]
        got = await client.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=headers)
        page_url, expected_prefix = (await got.json())["run_page_url"], f"http://127.0.0.1:{server.port}/?o="
    assert page_url.startswith(expected_prefix)

"""The public surface of resumable_triggers.testing, its two subpackages and its pytest plugin."""

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
    """__all__ is sorted, and the public (non-underscore, non-module) names are exactly it."""
    public = {
        name
        for name in dir(testing)
        if not name.startswith("_")
        and not isinstance(getattr(testing, name), type(os))
        and name != "annotations"
    }
    assert (sorted(testing.__all__), set(testing.__all__)) == (testing.__all__, public - {"TYPE_CHECKING"})


def test_every_name_users_import_from_testing_is_its_subpackage_object() -> None:
    """``resumable_triggers.testing`` re-exports the emulator's names: the same objects, not copies."""
    from resumable_triggers.testing import _clock, emulator

    homes = {name: _clock if name in ("ManualClock", "VirtualTime") else emulator for name in testing.__all__}
    assert {} == {
        name: home for name, home in homes.items() if getattr(testing, name) is not getattr(home, name)
    }


def test_the_old_deployment_module_names_the_airflow_harness() -> None:
    """``testing.deployment`` keeps its names, as the harness's own objects; its ``ApiError`` is
    ``AirflowApiError``."""
    from resumable_triggers.testing import airflow, deployment

    assert airflow.AirflowApiError is deployment.ApiError
    assert {} == {
        name: getattr(deployment, name)
        for name in deployment.__all__
        if name != "ApiError" and getattr(deployment, name) is not getattr(airflow, name)
    }


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_the_emulator_and_the_airflow_harness_import_nothing_of_each_other() -> None:
    """The two subpackages face opposite ways: importing either (all of it) imports nothing of the other."""
    emulator_side = _imported_after(
        "import resumable_triggers.testing.emulator as e; [getattr(e, n) for n in e.__all__]"
    )
    airflow_side = _imported_after(
        "import resumable_triggers.testing.airflow as a; [getattr(a, n) for n in a.__all__]"
    )
    assert ([], []) == (
        sorted(m for m in emulator_side if m.startswith("resumable_triggers.testing.airflow")),
        sorted(m for m in airflow_side if m.startswith(("resumable_triggers.testing.emulator", "aiohttp"))),
    )


def test_the_hostname_callable_every_airflow_process_imports_pulls_in_no_harness() -> None:
    """``[core] hostname_callable`` is imported by every process of a deployment: it loads neither the
    emulator, nor the harness, nor psutil or aiohttp."""
    from resumable_triggers.testing.airflow._topology import HOSTNAME_CALLABLE

    module, _, name = HOSTNAME_CALLABLE.rpartition(".")
    loaded = _imported_after(f"from {module} import {name}")
    ours = {m for m in loaded if m.startswith("resumable_triggers")}
    expected = {"resumable_triggers", "resumable_triggers.testing", "resumable_triggers.testing._lazy"}
    expected |= {"resumable_triggers.testing.airflow", module}
    assert (expected, set()) == (ours, {"psutil", "aiohttp"} & loaded)


def test_importing_the_package_and_plugin_does_not_import_airflow() -> None:
    """Airflow reads its configuration on import: the plugin, loaded by pytest first, must not import it."""
    loaded = _imported_after("import resumable_triggers.testing, resumable_triggers.testing._pytest_plugin")
    assert [] == sorted(m for m in loaded if m == "airflow" or m.startswith("airflow."))


def test_pytest_plugin_fixtures_serve_an_emulator_and_restore_the_environment(tmp_path: Path) -> None:
    """In a fresh pytest run, databricks_emulator_env lets the provider hook submit a run, and the
    variables it set are gone in the next test; databricks_emulator_factory serves emulators shaped
    by the test (or given by it) and stops all of them at teardown."""
    (tmp_path / "test_uses_plugin.py").write_text(
        textwrap.dedent(
            """
            import os

            def test_hook_reaches_the_emulator(databricks_emulator_env):
                from airflow.providers.databricks.hooks.databricks import DatabricksHook

                task = {"task_key": "a", "notebook_task": {"notebook_path": "/x"}}
                run_id = DatabricksHook().submit_run({"tasks": [task]})
                assert [run_id] == [r["run_id"] for r in databricks_emulator_env.emulator.runs()]
                assert databricks_emulator_env.url == os.environ["DATABRICKS_HOST"]

            def test_environment_is_restored():
                names = ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "AIRFLOW_CONN_DATABRICKS_DEFAULT")
                assert [] == [n for n in names if n in os.environ]

            def test_plain_fixture_has_url_and_token(databricks_emulator):
                assert databricks_emulator.token == databricks_emulator.emulator.token
                assert databricks_emulator.url.startswith("http://127.0.0.1:")

            STOPPED = []

            def test_factory_serves_emulators_shaped_by_the_test(databricks_emulator_factory):
                import urllib.request
                from resumable_triggers.testing import Emulator, ManualClock

                fast = databricks_emulator_factory(run_seconds=0.5, token="dapi-fast", clock=ManualClock())
                mine = Emulator(token="dapi-mine")
                given = databricks_emulator_factory(mine)
                request = urllib.request.Request(
                    f"{fast.url}/api/2.2/jobs/runs/list", headers={"Authorization": "Bearer dapi-fast"}
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    assert 200 == answer.status
                assert ("dapi-fast", "dapi-mine", True) == (fast.token, given.token, given.emulator is mine)
                assert fast.url != given.url
                STOPPED.extend([fast.url, given.url])

            def test_factory_stopped_every_emulator_at_teardown():
                import urllib.error, urllib.request
                refused = 0
                for url in STOPPED:
                    try:
                        urllib.request.urlopen(f"{url}/api/2.2/jobs/runs/list", timeout=5)
                    except urllib.error.URLError:
                        refused += 1
                assert 2 == refused

            def test_factory_takes_an_emulator_or_settings_not_both(databricks_emulator_factory):
                import pytest
                from resumable_triggers.testing import Emulator

                with pytest.raises(TypeError, match="not both"):
                    databricks_emulator_factory(Emulator(), run_seconds=1.0)
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
    assert (0, "6 passed") == (result.returncode, result.stdout.strip().splitlines()[-1].split(" in ")[0]), (
        result.stdout
    )


@pytest.mark.asyncio
async def test_make_app_works_under_aiohttp_test_server_with_its_own_url() -> None:
    """The bare aiohttp app can be served by aiohttp's TestServer; run_page_url then uses that host."""
    emulator = Emulator()
    async with TestServer(emulator.make_app(), host="127.0.0.1") as server, TestClient(server) as client:
        headers = {"Authorization": f"Bearer {emulator.token}"}
        submitted = await client.post(
            "/api/2.2/jobs/runs/submit",
            json={"tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/x"}}]},
            headers=headers,
        )
        run_id = (await submitted.json())["run_id"]
        got = await client.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=headers)
        page_url, expected_prefix = (await got.json())["run_page_url"], f"http://127.0.0.1:{server.port}/?o="
    assert page_url.startswith(expected_prefix)

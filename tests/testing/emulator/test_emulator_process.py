"""The state file, the CLI, EmulatorProcess restarts, and the control API over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from resumable_triggers.testing import (
    Emulator,
    EmulatorControl,
    EmulatorHandle,
    EmulatorProcess,
    ManualClock,
    UnknownRunError,
)

TASK: dict[str, Any] = {"task_key": "t", "notebook_task": {"notebook_path": "/x"}}
SPEC = {"run_name": "p", "tasks": [TASK]}


def _call(url: str, token: str, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/api/2.2/jobs/{endpoint}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# --- state file ----------------------------------------------------------------------------------


def test_state_file_round_trip_keeps_runs_jobs_tokens_and_timing(tmp_path: Path, clock: ManualClock) -> None:
    """A second Emulator on the same state file sees the same runs, in the same phase, and tokens."""
    path = tmp_path / "state.json"
    first = Emulator(clock=clock, state_file=path)
    workspace = first._workspace
    run = workspace.create_run(clock(), task_specs=[TASK], run_name="r", run_type="SUBMIT_RUN", token="tok")
    workspace.create_job({"name": "j"}, clock())
    first.close()
    clock.advance(3)
    second = Emulator(clock=clock, state_file=path)
    assert (first.get_run(run.run_id), run.run_id, ["j"]) == (
        second.get_run(run.run_id),
        second._workspace.idempotent_run("tok"),
        [j.settings["name"] for j in second._workspace.jobs.values()],
    )


def test_state_file_keeps_a_retried_tasks_planned_attempts(tmp_path: Path, clock: ManualClock) -> None:
    """Saved while a retried task waits for its retry, a reloaded emulator still runs the retry: the
    attempts' spans and fail_attempts are part of the saved run."""
    path = tmp_path / "state.json"
    first = Emulator(clock=clock, run_seconds=10.0, state_file=path)
    retried = {
        **TASK,
        "max_retries": 1,
        "min_retry_interval_millis": 5000,
        "notebook_task": {"notebook_path": "/x", "base_parameters": {"emulator.fail_attempts": "1"}},
    }
    run = first._workspace.create_run(clock(), task_specs=[retried], run_name="r", run_type="SUBMIT_RUN")
    clock.advance(12)
    first.close()
    second = Emulator(clock=clock, run_seconds=10.0, state_file=path)
    waiting = second.get_run(run.run_id)
    clock.advance(20)
    done = second.get_run(run.run_id)
    assert (["FAILED", "WAITING_FOR_RETRY"], "SUCCESS") == (
        [t["state"].get("result_state", t["state"]["life_cycle_state"]) for t in waiting["tasks"]],
        done["state"]["result_state"],
    )


def test_state_file_saves_changes_made_after_an_earlier_save(tmp_path: Path, clock: ManualClock) -> None:
    """A cancel, a script and a deletion after a first save are all in the next save, in run order."""
    path = tmp_path / "state.json"
    first = Emulator(clock=clock, state_file=path)
    workspace = first._workspace
    runs = [
        workspace.create_run(clock(), task_specs=[TASK], run_name=f"r{i}", run_type="SUBMIT_RUN")
        for i in range(3)
    ]
    first.flush()
    workspace.cancel(runs[0], clock())
    first.script_run(runs[1].run_id, result_state="FAILED", duration_seconds=1)
    clock.advance(5)
    workspace.remove(runs[2])
    first.flush()
    first.close()
    second = Emulator(clock=clock, state_file=path)
    assert first.runs() == second.runs()
    assert ["CANCELED", "FAILED"] == [r["state"]["result_state"] for r in second.runs()]


def test_state_file_is_written_by_itself_after_a_change(tmp_path: Path) -> None:
    """Without flush(), a change reaches the file within the debounce (the writer thread saves it)."""
    path = tmp_path / "state.json"
    emulator = Emulator(state_file=path)
    emulator.add_foreign_runs(2)
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    saved = json.loads(path.read_text())
    emulator.close()
    assert 2 == len(saved["runs"])


def test_corrupt_state_file_is_refused_with_its_path(tmp_path: Path) -> None:
    """A state file that is not JSON raises ValueError naming the file."""
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json is not valid JSON"):
        Emulator(state_file=path)


# --- CLI and process -----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_host_and_token_first_and_exits_cleanly_on_signal(signum: int) -> None:
    """The first two stdout lines are DATABRICKS_HOST (real port) and DATABRICKS_TOKEN; a signal exits 0."""
    command = [
        sys.executable,
        "-m",
        "resumable_triggers._cli",
        "emulator",
        "--port",
        "0",
        "--token",
        "dapi-cli",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        try:
            assert proc.stdout is not None
            host_line = proc.stdout.readline().decode().strip()
            token_line = proc.stdout.readline().decode().strip()
            listed = _call(host_line.split("=", 1)[1], "dapi-cli", "GET", "runs/list")
        finally:
            proc.send_signal(signum)
            code = proc.wait(timeout=10)
    assert (True, "DATABRICKS_TOKEN=dapi-cli", {"has_more": False}, 0) == (
        host_line.startswith("DATABRICKS_HOST=http://127.0.0.1:") and not host_line.endswith(":0"),
        token_line,
        listed,
        code,
    )


def test_emulator_process_restart_keeps_runs_tokens_and_the_url(tmp_path: Path) -> None:
    """After restart() the same URL serves the same run, and its idempotency token still maps to it."""
    with EmulatorProcess(run_seconds=600, state_file=tmp_path / "state.json") as proc:
        url, old_pid = proc.url, proc.pid
        run_id = _call(proc.url, proc.token, "POST", "runs/submit", {**SPEC, "idempotency_token": "keep"})[
            "run_id"
        ]
        proc.restart()
        again = _call(proc.url, proc.token, "POST", "runs/submit", {**SPEC, "idempotency_token": "keep"})[
            "run_id"
        ]
        run = _call(proc.url, proc.token, "GET", f"runs/get?run_id={run_id}")
        restarted = (proc.url, proc.pid != old_pid, proc.control.counters().runs_submitted)
    assert ((url, True, 0), run_id, "PENDING") == (restarted, again, run["state"]["life_cycle_state"])


def test_emulator_process_killed_hard_still_has_the_debounced_state(tmp_path: Path) -> None:
    """SIGKILL after the writer saved: a new process on the state file still knows the run."""
    path = tmp_path / "state.json"
    with EmulatorProcess(run_seconds=600, state_file=path) as proc:
        run_id = _call(proc.url, proc.token, "POST", "runs/submit", SPEC)["run_id"]
        deadline = time.monotonic() + 10
        while str(run_id) not in (path.read_text() if path.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.kill()
        proc.start()
        assert run_id == proc.control.get_run(run_id)["run_id"]


def test_emulator_process_reports_a_start_failure_with_its_stderr() -> None:
    """A CLI that cannot start (bad argument) raises RuntimeError carrying the CLI's complaint."""
    with (
        pytest.raises(RuntimeError, match="run_seconds must be a finite number"),
        EmulatorProcess(run_seconds=-1),
    ):
        pass


# --- control API over HTTP -----------------------------------------------------------------------


@pytest.fixture
def control(served: EmulatorHandle) -> EmulatorControl:
    return EmulatorControl(served.url)


def test_control_api_mirrors_the_emulator_methods(
    control: EmulatorControl, emulator: Emulator, served: EmulatorHandle, clock: ManualClock
) -> None:
    """Scripting, finishing, defaults, foreign runs, counters, log and runs work over HTTP like in-process."""
    control.set_default_outcome(result_state="FAILED", duration_seconds=4, error="default")
    scripted = _call(served.url, emulator.token, "POST", "runs/submit", SPEC)["run_id"]
    finished = _call(served.url, emulator.token, "POST", "runs/submit", SPEC)["run_id"]
    control.script_run(scripted, result_state="TIMEDOUT", duration_seconds=2)
    control.finish_run(finished, result_state="SUCCESS")
    foreign = control.add_foreign_runs(3, active=False)
    clock.advance(2)
    states = {r["run_id"]: r["state"].get("result_state") for r in control.runs()}
    counters = control.counters()
    assert (
        {scripted: "TIMEDOUT", finished: "SUCCESS", **dict.fromkeys(foreign, "SUCCESS")},
        (2, {"runs/submit": 2}, {200: 2}),
        ["runs/submit", "runs/submit"],
        emulator.get_run(scripted),
    ) == (
        states,
        (counters.runs_submitted, dict(counters.requests_by_endpoint), dict(counters.responses_by_status)),
        [r.endpoint for r in control.request_log],
        control.get_run(scripted),
    )


def test_control_api_injects_faults_and_rate_limits_and_resets(
    control: EmulatorControl, emulator: Emulator, served: EmulatorHandle
) -> None:
    """inject_fault and set_rate_limit over HTTP take effect; reset() clears them and the runs."""
    control.inject_fault(endpoint="runs/list", kind="http_error", status=503, retry_after_seconds=3)
    with pytest.raises(urllib.error.HTTPError) as faulted:
        _call(served.url, emulator.token, "GET", "runs/list")
    control.set_rate_limit(endpoint="runs/list", requests_per_second=0.01, burst=1)
    _call(served.url, emulator.token, "GET", "runs/list")
    with pytest.raises(urllib.error.HTTPError) as throttled:
        _call(served.url, emulator.token, "GET", "runs/list")
    faulted.value.close()
    throttled.value.close()
    control.reset()
    assert ((503, "3"), 429, {"has_more": False}, 0) == (
        (faulted.value.code, faulted.value.headers["Retry-After"]),
        throttled.value.code,
        _call(served.url, emulator.token, "GET", "runs/list"),
        control.counters().throttled,
    )


def test_control_api_reports_bad_arguments_and_unknown_runs(control: EmulatorControl) -> None:
    """Bad arguments raise ValueError with the emulator's message; unknown runs UnknownRunError."""
    with pytest.raises(ValueError, match="kind must be one of"):
        control.inject_fault(kind="explode")
    with pytest.raises(UnknownRunError):
        control.finish_run(12345)
    with pytest.raises(UnknownRunError):
        control.get_run(12345)


def test_control_release_held_over_http(
    control: EmulatorControl, emulator: Emulator, served: EmulatorHandle
) -> None:
    """A held submit answers once release_held() is called over the control API."""
    control.inject_fault(endpoint="runs/submit", kind="hold")
    answers: list[Any] = []
    caller = threading.Thread(
        target=lambda: answers.append(_call(served.url, emulator.token, "POST", "runs/submit", SPEC))
    )
    caller.start()
    deadline = time.monotonic() + 10
    while emulator.counters().runs_submitted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    held_answers = list(answers)
    released = control.release_held()
    caller.join(10)
    assert ([], 1, [{"run_id": emulator.runs()[0]["run_id"]}]) == (held_answers, released, answers)


def _status(url: str, token: str) -> int:
    try:
        _call(url, token, "GET", "runs/list")
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    return 200


def test_control_api_rotates_personal_access_tokens_and_reset_restores_the_configured_one(
    control: EmulatorControl, emulator: Emulator, served: EmulatorHandle
) -> None:
    """A rotation over HTTP: the new token is accepted once added, the old one gets 403 once revoked,
    revoking twice says so, and reset() accepts only the configured token again."""
    control.add_token("dapi-rotated")
    both = (_status(served.url, emulator.token), _status(served.url, "dapi-rotated"))
    revoked = (control.revoke_token(emulator.token), control.revoke_token(emulator.token))
    after = (_status(served.url, emulator.token), _status(served.url, "dapi-rotated"))
    control.reset()
    reset = (_status(served.url, emulator.token), _status(served.url, "dapi-rotated"))
    assert ((200, 200), (True, False), (403, 200), (200, 403)) == (both, revoked, after, reset)

"""``resumable-triggers emulator --background``: what a shell user types, run by a real shell.

The foreground CLI (two lines, then serve until a signal) is tested in test_emulator_process.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumable_triggers.testing import airflow_connection

CLI = f"{shlex.quote(sys.executable)} -m resumable_triggers._cli emulator"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def started_pids() -> Iterator[list[int]]:
    """Pids of background emulators a test started; each is stopped at teardown if still alive."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)


def test_eval_of_background_returns_and_exports_a_working_environment(
    tmp_path: Path, started_pids: list[int]
) -> None:
    """``eval "$(... --background)"`` returns (the server outlives the shell), and the exported host,
    token and Airflow connection reach it; killing the exported pid stops it."""
    script = (
        f'eval "$({CLI} --background --token dapi-bg --log-file {tmp_path / "emulator.log"})"\n'
        'printf "%s\\n" "$DATABRICKS_HOST" "$DATABRICKS_TOKEN" "$RESUMABLE_TRIGGERS_EMULATOR_PID" '
        '"$AIRFLOW_CONN_DATABRICKS_DEFAULT"\n'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    host, token, pid, connection = done.stdout.splitlines()
    started_pids.append(int(pid))
    request = urllib.request.Request(
        f"{host}/api/2.2/jobs/runs/list", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        listed = json.loads(response.read())
    assert ({"has_more": False}, "dapi-bg", json.loads(airflow_connection(host, token))) == (
        listed,
        token,
        json.loads(connection),
    )
    os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _alive(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(int(pid))


def test_background_server_that_cannot_listen_fails_the_command_with_the_reason(tmp_path: Path) -> None:
    """A port already taken: the command exits 1 at once, printing the server's own error, and
    exports nothing for the shell to eval."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*shlex.split(CLI), "--background", "--port", str(port), "--log-file", str(tmp_path / "e.log")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (1, "") == (done.returncode, done.stdout)
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr

"""``EmulatorProcess``: the emulator CLI in a subprocess, for tests that need a real restart."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from ._control import EmulatorControl


class EmulatorProcess:
    """Run ``resumable-triggers emulator`` in a child process.

    ``with EmulatorProcess(run_seconds=2, state_file=path) as proc:`` gives ``proc.url``,
    ``proc.token``, ``proc.pid`` and ``proc.control`` (an ``EmulatorControl``). ``restart()`` stops
    the process and starts a new one on the same port with the same state file, so runs survive
    and clients keep their URL. Without ``state_file`` a restart loses all runs.
    """

    def __init__(
        self,
        *,
        run_seconds: float = 5.0,
        state_file: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout_seconds: float = 30.0,
    ) -> None:
        self.run_seconds = run_seconds
        self.state_file = None if state_file is None else Path(state_file)
        self.extra_args = tuple(extra_args)
        self.host = host
        self.port = port
        self.start_timeout_seconds = start_timeout_seconds
        self.url = ""
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None
        # Outlives any one child (restarts append to it); closed in __exit__.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("The emulator process is not running.")
        return self._proc.pid

    @property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.url)

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "resumable_triggers._cli", "emulator"]
        command += ["--host", self.host, "--port", str(self.port), "--run-seconds", str(self.run_seconds)]
        if self.state_file is not None:
            command += ["--state", str(self.state_file)]
        return command + list(self.extra_args)

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("The emulator process is already running.")
        self._proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=self._stderr)
        try:
            lines = self._read_lines(2)
        except BaseException:
            self.stop()
            raise
        values = dict(line.split("=", 1) for line in lines)
        self.url, self.token = values["DATABRICKS_HOST"], values["DATABRICKS_TOKEN"]
        self.port = int(self.url.rsplit(":", 1)[1])

    def _read_lines(self, count: int) -> list[str]:
        assert self._proc is not None
        lines = first_lines(self._proc, count, timeout_seconds=self.start_timeout_seconds)
        if lines is None:
            raise RuntimeError(f"The emulator exited at start-up: {self.stderr_text()}")
        return lines

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def stop(self, timeout_seconds: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout_seconds``); returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash. The state file keeps whatever was last written."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmulatorProcess:
        try:
            self.start()
        except BaseException:
            self._stderr.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._stderr.close()


def first_lines(proc: subprocess.Popen[bytes], count: int, *, timeout_seconds: float) -> list[str] | None:
    """The first ``count`` lines ``proc`` writes to its stdout pipe, or None if it closed the pipe
    (exited) first; TimeoutError after ``timeout_seconds``. Reads without blocking past the deadline."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_seconds
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while buffer.count(b"\n") < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"The emulator did not start within {timeout_seconds} s.")
            if selector.select(remaining):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    return None
                buffer += chunk
    return buffer.decode().splitlines()[:count]

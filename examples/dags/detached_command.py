"""A second, non-Databricks resumable job: a shell command that outlives the worker that started it.

It shows how small a new integration is. The "remote system" is a directory of job folders on a disk
shared by workers and triggerer: submitting creates ``<root>/<token>/`` atomically (so the same token
can never start a second process), a detached wrapper runs the command and records its exit code, and
status is read from those files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumable_triggers.resume import (
    ExternalId,
    JobPhase,
    JobStatus,
    ResumableDeferrableOperator,
    ResumableJobTrigger,
    WatchArgs,
)

# The wrapper the detached process runs: it must not depend on this module being importable.
_WRAPPER = """
import pathlib, subprocess, sys
job = pathlib.Path(sys.argv[1])
(job / "state").write_text("RUNNING")
code = subprocess.call(sys.argv[2:])
(job / "exit_code").write_text(str(code))
(job / "state").write_text("SUCCEEDED" if code == 0 else "FAILED")
"""


_LAUNCHER = """
import subprocess, sys
child = subprocess.Popen([sys.argv[1], "-c", *sys.argv[2:]], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid)
"""


def read_status(job: Path) -> JobStatus:
    if not job.is_dir():
        return JobStatus(JobPhase.GONE, "GONE", f"{job} does not exist")
    state = _read(job / "state") or "PENDING"
    if state in ("PENDING", "RUNNING") and not _alive(job):
        return JobStatus(JobPhase.FAILED, "LOST", "the process ended without recording an exit code")
    phase = {"SUCCEEDED": JobPhase.SUCCEEDED, "FAILED": JobPhase.FAILED, "CANCELLED": JobPhase.FAILED}
    return JobStatus(phase.get(state, JobPhase.ACTIVE), state, f"exit code {_read(job / 'exit_code')}")


def submit(root: Path, token: str, command: Sequence[str]) -> ExternalId:
    job = root / token
    root.mkdir(parents=True, exist_ok=True)
    try:
        job.mkdir()
    except FileExistsError:
        return token  # this token already started its process: never start a second one
    # A short-lived launcher starts the wrapper in its own session and exits at once: the job survives
    # the worker's death, is cancellable as a group, and never lingers as the worker's zombie child.
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, sys.executable, _WRAPPER, str(job), *command],
        check=True,
        capture_output=True,
        text=True,
    )
    (job / "pid").write_text(launched.stdout.strip())
    return token


def cancel(job: Path) -> None:
    pid = _read(job / "pid")
    if pid:
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            return
    (job / "state").write_text("CANCELLED")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def _alive(job: Path) -> bool:
    pid = _read(job / "pid")
    if pid is None:
        return True  # just submitted: the pid file is written right after the spawn
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class DetachedCommandArgs(WatchArgs):
    root: str


class DetachedCommandTrigger(ResumableJobTrigger[DetachedCommandArgs]):
    Args = DetachedCommandArgs
    classpath = "detached_command.DetachedCommandTrigger"

    @property
    def job(self) -> Path:
        return Path(self.args.root) / str(self.args.external_id)

    async def observe(self) -> AsyncIterator[JobStatus]:
        while True:
            # Disk reads are short but still blocking: keep them off the triggerer's loop.
            yield await asyncio.to_thread(read_status, self.job)
            await asyncio.sleep(self.args.poll_interval_seconds)

    async def cancel(self) -> None:
        await asyncio.to_thread(cancel, self.job)


class DetachedCommandOperator(ResumableDeferrableOperator):
    """Run ``command`` detached from the worker; survive worker and triggerer restarts."""

    resume_key = "detached_command"
    job_kind = "detached-command"
    template_fields = ("command",)

    def __init__(self, *, command: Sequence[str], root: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = list(command)
        self.root = root

    def validate_job(self) -> None:
        if not self.command or not all(isinstance(part, str) for part in self.command):
            raise ValueError("command must be a non-empty list of strings")

    async def submit_job(self, token: str, context: Any) -> ExternalId:
        return await asyncio.to_thread(submit, Path(self.root), token, self.command)

    async def job_status(self, external_id: ExternalId) -> JobStatus:
        return await asyncio.to_thread(read_status, Path(self.root) / str(external_id))

    async def cancel_job(self, external_id: ExternalId) -> None:
        await asyncio.to_thread(cancel, Path(self.root) / str(external_id))

    def job_trigger(self, external_id: ExternalId) -> DetachedCommandTrigger:
        return DetachedCommandTrigger(
            external_id=external_id,
            root=self.root,
            poll_interval_seconds=self.polling_period_seconds,
            cancel_on_kill=self.cancel_on_kill,
        )

"""The emulated workspace: runs, jobs, idempotency tokens, ids. Not thread-safe; ``Emulator`` locks.

Every method takes typed values (the HTTP layer parses and validates) and the current clock time.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ErrorReply, invalid, job_not_found, run_not_found
from ._runs import Attempt, RunRecord, TaskRecord, effective_outcome, is_active, start_ms
from ._scripting import Outcome, declared

# Ids look like real ones: beyond int32 (catches narrow ints) and below 2**53 (JSON doubles).
RUN_ID_BASE = 911_000_000_000_000
JOB_ID_BASE = 482_000_000_000_000
MAX_SUBMIT_TASKS = 100
MAX_JOB_TASKS = 1000


@dataclass(slots=True)
class JobRecord:
    job_id: int
    settings: dict[str, Any]
    created_time: float
    creator_user_name: str


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[RunRecord]
    has_more: bool
    next_page_token: str | None
    prev_page_token: str | None


def validate_tasks(tasks: Sequence[Any], maximum: int) -> list[dict[str, Any]]:
    """Check the ``tasks`` array of a submit or job: objects with unique, non-empty ``task_key``."""
    if len(tasks) > maximum:
        raise invalid(
            f"Invalid value for parameter tasks: at most {maximum} tasks are allowed, got {len(tasks)}"
        )
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise ErrorReply(
                400, "MALFORMED_REQUEST", f"Invalid value for parameter tasks[{index}]: expected an object"
            )
        key = task.get("task_key")
        if not isinstance(key, str) or not key:
            raise invalid(
                f"Invalid value for parameter tasks[{index}].task_key: a non-empty string is required"
            )
        if key in seen:
            raise invalid(f"Invalid value for parameter tasks: task_key {key!r} is used more than once")
        seen.add(key)
    return list(tasks)


def _encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode().rstrip("=")


def _decode_cursor(token: str, name: str = "page_token") -> list[str]:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"Invalid value for parameter {name}: {token[:40]!r} is not a page token") from exc


class EmulatedWorkspace:
    """The emulated workspace's state: its runs, jobs, idempotency tokens and next ids."""

    def __init__(
        self, *, run_seconds: float, cancel_seconds: float, user_name: str, retention_seconds: float
    ):
        self.run_seconds = run_seconds
        self.cancel_seconds = cancel_seconds
        self.user_name = user_name
        self.retention_seconds = retention_seconds
        self.default = Outcome()
        self.track_changes = False
        self.clear()

    def clear(self) -> None:
        self.runs: dict[int, RunRecord] = {}
        self.task_owner: dict[int, int] = {}  # task run id -> parent run id
        self.jobs: dict[int, JobRecord] = {}
        self.tokens: dict[str, int] = {}  # idempotency token -> run id
        self.deleted_tokens: set[str] = set()
        self.next_id = RUN_ID_BASE
        self.next_job_id = JOB_ID_BASE
        self.runs_submitted = 0
        self._newest_first: list[RunRecord] | None = None
        # Ids of runs created, changed or removed since the state file last encoded them (only
        # collected when there is a state file, so it cannot grow without bound otherwise).
        self.touched: set[int] = set()

    def _touch(self, run_id: int) -> None:
        if self.track_changes:
            self.touched.add(run_id)

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- runs ------------------------------------------------------------------------------------
    def find(self, run_id: int, now: float) -> RunRecord:
        """The parent run with this id (a task run id resolves to its parent), or the API's 400."""
        run = self.runs.get(self.task_owner.get(run_id, run_id))
        if run is None or self._expired(run, now):
            raise run_not_found(run_id)
        return run

    def find_task(self, run: RunRecord, task_run_id: int) -> TaskRecord | None:
        for task in (*run.tasks, *run.replaced_tasks):
            if task.run_id == task_run_id:
                return task
        return None

    def _expired(self, run: RunRecord, now: float) -> bool:
        return now >= run.attempt.end + self.retention_seconds

    def idempotent_run(self, token: str | None) -> int | None:
        if token is None:
            return None
        if token in self.deleted_tokens:
            raise invalid(f"The run created with idempotency_token {token!r} was deleted; use a new token.")
        return self.tokens.get(token)

    def create_run(
        self,
        now: float,
        *,
        task_specs: list[dict[str, Any]],
        run_name: str,
        run_type: str,
        job_id: int | None = None,
        timeout_seconds: float = 0,
        queued: bool = False,
        token: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        job_clusters: list[Any] | None = None,
        job_parameters: list[Any] | None = None,
        creator: str | None = None,
        count: bool = True,
    ) -> RunRecord:
        run_id = self._new_id()
        found = [declared(spec, overrides) for spec in task_specs]
        duration = self._duration([d.duration_seconds for d in found])
        tasks = []
        for spec, decl in zip(task_specs, found, strict=True):
            outcome = Outcome(
                result_state=decl.result_state or self.default.result_state,
                error=decl.error if decl.error is not None else self.default.error,
                output=decl.output if decl.output is not None else self.default.output,
            )
            tasks.append(
                TaskRecord(
                    task_key=spec["task_key"],
                    run_id=self._new_id(),
                    spec=spec,
                    attempt_index=0,
                    result_state=outcome.result_state,
                    error=outcome.error,
                    output=outcome.output,
                )
            )
        if job_id is None:
            # One-time runs get a job of their own, as on Databricks.
            self.next_job_id += 1
            job_id = self.next_job_id
        run = RunRecord(
            run_id=run_id,
            job_id=job_id,
            run_name=run_name,
            run_type=run_type,
            creator_user_name=creator or self.user_name,
            attempts=[Attempt.schedule(now, duration, queued=queued, timeout=timeout_seconds)],
            tasks=tasks,
            timeout_seconds=timeout_seconds,
            queued=queued,
            idempotency_token=token,
            job_clusters=job_clusters or [],
            job_parameters=job_parameters or [],
            duration_seconds=duration,
        )
        self.add(run)
        if token is not None:
            self.tokens[token] = run_id
        if count:
            self.runs_submitted += 1
        return run

    def _duration(self, declared_durations: list[float | None]) -> float:
        given = [d for d in declared_durations if d is not None]
        if given:
            return max(given)
        if self.default.duration_seconds is not None:
            return self.default.duration_seconds
        return self.run_seconds

    def add(self, run: RunRecord) -> None:
        self.runs[run.run_id] = run
        for task in (*run.tasks, *run.replaced_tasks):
            self.task_owner[task.run_id] = run.run_id
        self.next_id = max(self.next_id, run.run_id, *(t.run_id for t in (*run.tasks, *run.replaced_tasks)))
        self._newest_first = None
        self._touch(run.run_id)

    def remove(self, run: RunRecord, *, deleted: bool = True) -> None:
        """Forget a run; a deleted run's idempotency token stays refused, an expired one is freed."""
        del self.runs[run.run_id]
        for task in (*run.tasks, *run.replaced_tasks):
            self.task_owner.pop(task.run_id, None)
        if run.idempotency_token is not None:
            self.tokens.pop(run.idempotency_token, None)
            if deleted:
                self.deleted_tokens.add(run.idempotency_token)
        self._newest_first = None
        self._touch(run.run_id)

    def cancel(self, run: RunRecord, now: float) -> None:
        run.attempt.cancel(now, self.cancel_seconds)
        self._touch(run.run_id)

    def script(self, run: RunRecord, outcome: Outcome, now: float) -> None:
        attempt = run.attempt
        self._touch(run.run_id)
        if not is_active(run, now):
            raise ValueError(f"Run {run.run_id} has already terminated; it cannot be scripted any more.")
        if attempt.cancelled:
            raise ValueError(f"Run {run.run_id} is being cancelled; it cannot be scripted any more.")
        for task in run.tasks:
            if task.attempt_index == len(run.attempts) - 1:
                task.result_state, task.error, task.output = (
                    outcome.result_state,
                    outcome.error,
                    outcome.output,
                )
        if outcome.duration_seconds is not None:
            run.duration_seconds = outcome.duration_seconds
            attempt.retime(
                now, attempt.start, outcome.duration_seconds, run.timeout_seconds, queued=run.queued
            )

    def finish(self, run: RunRecord, outcome: Outcome, now: float) -> None:
        if not is_active(run, now):
            raise ValueError(f"Run {run.run_id} has already terminated.")
        self.script(run, Outcome(outcome.result_state, None, outcome.error, outcome.output), now)
        run.attempt.finish(now)

    def repair(self, run: RunRecord, now: float, task_keys: list[str], overrides: Mapping[str, Any]) -> int:
        repair_id = self._new_id()
        self._touch(run.run_id)
        index = len(run.attempts)
        rerun = [t for t in run.tasks if t.task_key in task_keys]
        found = [declared(t.spec, overrides) for t in rerun]
        duration = self._duration([d.duration_seconds for d in found])
        run.attempts.append(Attempt.schedule(now, duration, queued=run.queued, timeout=run.timeout_seconds))
        run.attempts[-1].repair_id = repair_id
        for old, decl in zip(rerun, found, strict=True):
            run.replaced_tasks.append(dataclasses.replace(old))
            old.run_id = self._new_id()
            old.attempt_index = index
            old.attempt_number += 1
            old.result_state = decl.result_state or self.default.result_state
            old.error = decl.error if decl.error is not None else self.default.error
            old.output = decl.output if decl.output is not None else self.default.output
            self.task_owner[old.run_id] = run.run_id
        run.duration_seconds = duration
        return repair_id

    def failed_task_keys(self, run: RunRecord) -> list[str]:
        return [
            t.task_key
            for t in run.tasks
            if effective_outcome(t, run.attempts[t.attempt_index]) not in ("SUCCESS", "SKIPPED", "EXCLUDED")
        ]

    def newest_first(self) -> list[RunRecord]:
        if self._newest_first is None:
            self._newest_first = sorted(
                self.runs.values(), key=lambda r: (start_ms(r), r.run_id), reverse=True
            )
        return self._newest_first

    def purge_expired(self, now: float) -> None:
        for run in [r for r in self.runs.values() if self._expired(r, now)]:
            self.remove(run, deleted=False)

    def list_runs(
        self,
        now: float,
        *,
        keep: Callable[[RunRecord], bool],
        limit: int,
        offset: int,
        page_token: str | None,
    ) -> RunPage:
        """Newest first; tokens are cursors so pages stay stable while runs are being created."""
        self.purge_expired(now)
        matching = [r for r in self.newest_first() if keep(r)]
        start = offset
        if page_token:
            direction, *key_parts = _decode_cursor(page_token)
            try:
                key = (int(key_parts[0]), int(key_parts[1]))
            except (IndexError, ValueError) as exc:
                raise invalid(f"Invalid value for parameter page_token: {page_token[:40]!r}") from exc
            keys = [(start_ms(r), r.run_id) for r in matching]
            if direction == "n":
                start = next((i for i, k in enumerate(keys) if k < key), len(keys))
            elif direction == "p":
                end = next((i for i, k in enumerate(keys) if k <= key), len(keys))
                start = max(0, end - limit)
            else:
                raise invalid(f"Invalid value for parameter page_token: {page_token[:40]!r}")
        page = matching[start : start + limit]
        has_more = start + limit < len(matching)
        next_token = prev_token = None
        if page and has_more:
            last = page[-1]
            next_token = _encode_cursor("n", start_ms(last), last.run_id)
        if page and start > 0:
            first = page[0]
            prev_token = _encode_cursor("p", start_ms(first), first.run_id)
        return RunPage(page, has_more, next_token, prev_token)

    # -- jobs ------------------------------------------------------------------------------------
    def create_job(self, settings: dict[str, Any], now: float) -> JobRecord:
        self.next_job_id += 1
        job = JobRecord(self.next_job_id, settings, now, self.user_name)
        self.jobs[job.job_id] = job
        return job

    def find_job(self, job_id: int) -> JobRecord:
        job = self.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    def list_jobs(
        self, name: str | None, limit: int, offset: int, page_token: str | None
    ) -> tuple[list[JobRecord], bool, str | None, str | None]:
        jobs = sorted(self.jobs.values(), key=lambda j: j.job_id)
        if name is not None:
            jobs = [j for j in jobs if str(j.settings.get("name", "")).lower() == name.lower()]
        if page_token:
            parts = _decode_cursor(page_token)
            if len(parts) != 2 or parts[0] != "o" or not parts[1].isdigit():
                raise invalid(f"Invalid value for parameter page_token: {page_token[:40]!r}")
            offset = int(parts[1])
        page = jobs[offset : offset + limit]
        has_more = offset + limit < len(jobs)
        next_token = _encode_cursor("o", offset + limit) if has_more else None
        prev_token = _encode_cursor("o", max(0, offset - limit)) if offset > 0 else None
        return page, has_more, next_token, prev_token

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(list(self.runs.values()))

"""The emulated workspace: runs, jobs, idempotency tokens, ids. Not thread-safe; ``Emulator`` locks.

Every method takes typed values (the HTTP layer parses and validates) and the current clock time.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import invalid, job_not_found, run_not_found
from ._retries import drop_after, fit_run_phases, plan, span_seconds
from ._runs import Attempt, RunRecord, TaskRecord, effective_outcome, is_active, start_ms, task_attempt
from ._scripting import DEFAULT_FAILURE, Declared, Outcome, declared

# Ids look like real ones: beyond int32 (catches narrow ints) and below 2**53 (JSON doubles).
RUN_ID_BASE = 911_000_000_000_000
JOB_ID_BASE = 482_000_000_000_000


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
        tasks, earlier = [], []
        for spec, decl in zip(task_specs, found, strict=True):
            *retried, current = self._task_attempts(spec, decl, index=0, first_number=0, fail_attempts=0)
            tasks.append(current)
            earlier.extend(retried)
        duration = max([duration, *(s for t in tasks if (s := span_seconds(t)) is not None)])
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
            replaced_tasks=earlier,
            timeout_seconds=timeout_seconds,
            queued=queued,
            idempotency_token=token,
            job_clusters=job_clusters or [],
            job_parameters=job_parameters or [],
            duration_seconds=duration,
        )
        fit_run_phases(run)
        if run.attempt.timed_out:  # retries the run's timeout cuts off never start
            drop_after(run, run.attempt.terminating_at)
        self.add(run)
        if token is not None:
            self.tokens[token] = run_id
        if count:
            self.runs_submitted += 1
        return run

    def _task_attempts(
        self, spec: dict[str, Any], decl: Declared, *, index: int, first_number: int, fail_attempts: int
    ) -> list[TaskRecord]:
        """The planned attempts of one task in run attempt ``index`` (the last is its current one)."""
        fail = decl.fail_attempts if decl.fail_attempts is not None else fail_attempts
        planned = plan(
            spec,
            first_number=first_number,
            fail_attempts=fail,
            result_state=decl.result_state or self.default.result_state,
            error=decl.error if decl.error is not None else self.default.error,
            seconds=self._duration([decl.duration_seconds]),
        )
        output = decl.output if decl.output is not None else self.default.output
        return [
            TaskRecord(
                task_key=spec["task_key"],
                run_id=self._new_id(),
                spec=spec,
                attempt_index=index,
                result_state=p.result_state,
                error=p.error,
                output=output,
                attempt_number=first_number + number,
                offset_seconds=p.offset_seconds,
                length_seconds=p.length_seconds,
                fail_attempts=fail,
            )
            for number, p in enumerate(planned)
        ]

    def _forget_attempts(self, run: RunRecord, instant: float) -> None:
        for task in drop_after(run, instant):
            self.task_owner.pop(task.run_id, None)

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
        if now < run.attempt.terminating_at:
            self._forget_attempts(run, now)
        run.attempt.cancel(now, self.cancel_seconds)
        self._touch(run.run_id)

    def script(
        self, run: RunRecord, outcome: Outcome, now: float, *, fail_attempts: int | None = None
    ) -> None:
        """Decide how each task's current attempt ends; retries not yet started are forgotten (a
        scripted outcome plans none). ``fail_attempts``: as ``emulator.fail_attempts``."""
        attempt = run.attempt
        self._touch(run.run_id)
        if not is_active(run, now):
            raise ValueError(f"Run {run.run_id} has already terminated; it cannot be scripted any more.")
        if attempt.cancelled:
            raise ValueError(f"Run {run.run_id} is being cancelled; it cannot be scripted any more.")
        self._forget_attempts(run, now)
        current = [t for t in run.tasks if t.attempt_index == len(run.attempts) - 1]
        ends = [span_seconds(t) for t in current]
        for task in current:
            if fail_attempts is not None:
                task.fail_attempts = fail_attempts
            failing = fail_attempts is not None and task.attempt_number < fail_attempts
            task.result_state = "FAILED" if failing else outcome.result_state
            task.error = outcome.error if outcome.error is not None or not failing else DEFAULT_FAILURE
            task.output = outcome.output
            # The scripted attempt now lasts until its run attempt ends, wherever that moves.
            task.length_seconds = None
        duration = outcome.duration_seconds
        if duration is None and ends and None not in ends:
            duration = max(e for e in ends if e is not None)  # where the current attempts would end
        if duration is not None:
            run.duration_seconds = duration
            attempt.retime(now, attempt.start, duration, run.timeout_seconds, queued=run.queued)

    def finish(self, run: RunRecord, outcome: Outcome, now: float) -> None:
        if not is_active(run, now):
            raise ValueError(f"Run {run.run_id} has already terminated.")
        self.script(run, Outcome(outcome.result_state, None, outcome.error, outcome.output), now)
        run.attempt.finish(now)

    def repair(self, run: RunRecord, now: float, task_keys: list[str], overrides: Mapping[str, Any]) -> int:
        repair_id = self._new_id()
        self._touch(run.run_id)
        index = len(run.attempts)
        found = {t.task_key: declared(t.spec, overrides) for t in run.tasks if t.task_key in task_keys}
        duration = self._duration([d.duration_seconds for d in found.values()])
        for position, old in enumerate(run.tasks):
            if old.task_key not in found:
                continue
            run.replaced_tasks.append(old)
            *retried, current = self._task_attempts(
                old.spec,
                found[old.task_key],
                index=index,
                first_number=old.attempt_number + 1,
                fail_attempts=old.fail_attempts,
            )
            run.tasks[position] = current
            run.replaced_tasks.extend(retried)
            for task in (*retried, current):
                self.task_owner[task.run_id] = run.run_id
            duration = max(duration, span_seconds(current) or 0.0)
        run.attempts.append(Attempt.schedule(now, duration, queued=run.queued, timeout=run.timeout_seconds))
        run.attempts[-1].repair_id = repair_id
        run.duration_seconds = duration
        fit_run_phases(run)
        if run.attempt.timed_out:
            self._forget_attempts(run, run.attempt.terminating_at)
        return repair_id

    def failed_task_keys(self, run: RunRecord) -> list[str]:
        return [
            t.task_key
            for t in run.tasks
            if effective_outcome(t, task_attempt(run, t)) not in ("SUCCESS", "SKIPPED", "EXCLUDED")
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

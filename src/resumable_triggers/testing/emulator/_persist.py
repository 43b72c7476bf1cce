"""The optional state file: JSON, written atomically (temp file + rename) and debounced.

A daemon thread writes at most once per ``debounce_seconds`` after changes, so a burst of submits
costs one write; ``flush()`` writes synchronously (on shutdown). Readers never see a torn file.

Each run's JSON is cached and re-encoded only when the run was created, changed or removed (the
clock moves runs without changing them), so saving 10,000 runs holds the emulator's lock for
milliseconds, not for a full re-encode.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._runs import Attempt, RunRecord, TaskRecord
from ._store import JOB_ID_BASE, RUN_ID_BASE, EmulatedWorkspace, JobRecord

STATE_VERSION = 1


class WorkspaceCodec:
    """Encodes a workspace to JSON text (with a per-run cache) and loads it back."""

    def __init__(self) -> None:
        self._runs: dict[int, str] = {}

    def encode(self, ws: EmulatedWorkspace, oauth_tokens: Mapping[str, float]) -> str:
        """Call with the emulator's lock held; cheap when few runs changed."""
        for run_id in ws.touched:
            run = ws.runs.get(run_id)
            if run is None:
                self._runs.pop(run_id, None)
            else:
                self._runs[run_id] = json.dumps(dataclasses.asdict(run), separators=(",", ":"))
        ws.touched.clear()
        head = {
            "version": STATE_VERSION,
            "next_id": ws.next_id,
            "next_job_id": ws.next_job_id,
            "jobs": [dataclasses.asdict(j) for j in ws.jobs.values()],
            "tokens": ws.tokens,
            "deleted_tokens": sorted(ws.deleted_tokens),
            "oauth_tokens": dict(oauth_tokens),
        }
        # In the workspace's order (creation order), so a reload lists runs as before.
        runs = ",".join([self._runs[run_id] for run_id in ws.runs])
        return json.dumps(head, separators=(",", ":"))[:-1] + ',"runs":[' + runs + "]}"

    def load(self, ws: EmulatedWorkspace, state: Mapping[str, Any]) -> None:
        ws.clear()
        for raw in state.get("runs", []):
            fields = dict(raw)
            fields["attempts"] = [Attempt(**a) for a in fields["attempts"]]
            fields["tasks"] = [TaskRecord(**t) for t in fields["tasks"]]
            fields["replaced_tasks"] = [TaskRecord(**t) for t in fields.get("replaced_tasks", [])]
            ws.add(RunRecord(**fields))
        for raw in state.get("jobs", []):
            job = JobRecord(**raw)
            ws.jobs[job.job_id] = job
        ws.tokens = {str(k): int(v) for k, v in state.get("tokens", {}).items()}
        ws.deleted_tokens = set(state.get("deleted_tokens", []))
        ws.next_id = max(ws.next_id, int(state.get("next_id", RUN_ID_BASE)))
        ws.next_job_id = max(ws.next_job_id, int(state.get("next_job_id", JOB_ID_BASE)))


class StateFile:
    def __init__(
        self,
        path: str | os.PathLike[str],
        snapshot: Callable[[], str],
        *,
        debounce_seconds: float = 0.2,
    ) -> None:
        self.path = Path(path)
        self._snapshot = snapshot
        self._debounce = debounce_seconds
        self._dirty = threading.Event()
        self._closed = False
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no file yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"Emulator state file {self.path} is not valid JSON: {exc}") from exc
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"Emulator state file {self.path} is not a version {STATE_VERSION} state.")
        return state

    def mark_dirty(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="emulator-state-writer", daemon=True)
            self._thread.start()
        self._dirty.set()

    def _run(self) -> None:
        while not self._closed:
            self._dirty.wait()
            if self._closed:
                return
            # Let a burst of changes settle, then write once.
            threading.Event().wait(self._debounce)
            self._dirty.clear()
            self.flush()

    def flush(self) -> None:
        with self._write_lock:
            data = self._snapshot()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(temp, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)

    def close(self) -> None:
        self._closed = True
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()
        self._closed = False

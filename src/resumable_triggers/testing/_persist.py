"""The optional state file: JSON, written atomically (temp file + rename) and debounced.

A daemon thread writes at most once per ``debounce_seconds`` after changes, so a burst of submits
costs one write; ``flush()`` writes synchronously (on shutdown). Readers never see a torn file.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class StateFile:
    def __init__(
        self,
        path: str | os.PathLike[str],
        snapshot: Callable[[], dict[str, Any]],
        *,
        debounce_seconds: float = 0.1,
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
        if not isinstance(state, dict):
            raise ValueError(f"Emulator state file {self.path} does not hold a JSON object.")
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
        data = json.dumps(self._snapshot(), separators=(",", ":"))
        with self._write_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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

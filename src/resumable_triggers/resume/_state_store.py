"""The resume record in Airflow's task state store: read, written and set aside, always through the guard.

One key per operator class (``resume_key``) holds the record; a record this library cannot read is
copied aside to ``<key>.quarantined`` before a fresh one replaces it, so nothing a person might need to
reconcile by hand is lost. Every store call goes through ``CheckpointGuard.supervisor_call``: a SIGTERM
must never land inside a request to the supervisor (see ``_signals``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.observability import stats

from resumable_triggers.resume._record import RecordProblem, ResumeRecord, UnknownRecordVersion
from resumable_triggers.resume._signals import CheckpointGuard

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordKeeper:
    """The record of one task instance: ``store`` is the try's ``task_state_store``."""

    store: Any
    guard: CheckpointGuard
    key: str
    kind: str

    def load(self) -> ResumeRecord | None:
        """The stored record; None when there is none. Unreadable records raise ``RecordProblem``."""
        with self.guard.supervisor_call():
            raw = self.store.get(self.key)
        if raw is None:
            return None
        try:
            return ResumeRecord.from_json(raw, kind=self.kind)
        except UnknownRecordVersion as exc:
            # Guessing at a newer format could duplicate or adopt the wrong job: stop, once, loudly.
            raise AirflowFailException(f"cannot resume from task state key {self.key!r}: {exc}") from exc

    def save(self, record: ResumeRecord) -> None:
        with self.guard.supervisor_call():
            self.store.set(self.key, record.to_json())

    def quarantine(self, problem: RecordProblem, *, operator: str) -> None:
        """Copy an unusable record aside (a fresh one is about to replace it), and say so."""
        quarantine_key = f"{self.key}.quarantined"
        log.error(
            "task state key %r is unusable (%s); it was copied to %r and a fresh job will be submitted",
            self.key,
            problem,
            quarantine_key,
        )
        stats.incr("resumable_job.unreadable_record", tags={"operator": operator})
        with self.guard.supervisor_call():
            self.store.set(quarantine_key, {"raw": problem.raw})

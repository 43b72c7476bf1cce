"""The resume record: what one task instance remembers about its external job across attempts.

It lives in Airflow's ``task_state_store`` under one key per operator class. Airflow keys that store
by (dag run, task, map index), *not* by try, and a user's clear does not wipe it: so the record has to
say which clear cycle it belongs to, and which generation of submission within that cycle.

Reading a stored value can fail in three distinguishable ways, each with its own documented decision
in the operator::

    RecordProblem
     ├── ForeignRecord        the key holds something we did not write (quarantine, start fresh)
     ├── CorruptRecord        our marker, but fields missing or of the wrong type (quarantine, start fresh)
     └── UnknownRecordVersion written by a newer resumable-triggers (fail the task, no retry)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

SCHEMA = "resumable-triggers/resume-record"
MAX_TOKEN_LENGTH = 64  # Databricks rejects longer idempotency tokens with HTTP 400.

ExternalId = int | str


class RecordProblem(Exception):
    """A stored value could not be used as a resume record. ``raw`` is what was stored."""

    def __init__(self, message: str, *, raw: object) -> None:
        super().__init__(message)
        self.raw = raw


class ForeignRecord(RecordProblem):
    """The key holds a value that resumable-triggers did not write."""


class CorruptRecord(RecordProblem):
    """The value carries our schema marker but cannot be read."""


class UnknownRecordVersion(RecordProblem):
    """The value was written by a newer resumable-triggers whose format this version cannot read."""

    def __init__(self, message: str, *, raw: object, version: object) -> None:
        super().__init__(message, raw=raw)
        self.version = version


@dataclass(frozen=True, slots=True)
class RepairIntent:
    """A repair decided and not yet known to be accepted (see ``_repair``).

    ``after`` is the job's latest repair id when the repair was decided (None: never repaired); the
    repair is sent based on it, and a history whose latest repair differs proves it was accepted.
    ``number`` counts the job's repairs, 1 for the first.
    """

    after: int | None
    number: int

    @classmethod
    def from_json(cls, raw: object) -> RepairIntent | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise TypeError(f"field 'repair_intent' should be a mapping or null, got {type(raw).__name__}")
        after = raw.get("after")
        if after is not None and (not isinstance(after, int) or isinstance(after, bool)):
            raise TypeError(f"field 'repair_intent.after' should be int or null, got {type(after).__name__}")
        number = raw.get("number")
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"field 'repair_intent.number' should be int, got {type(number).__name__}")
        if number < 1:
            raise ValueError(f"field 'repair_intent.number' should be >= 1, got {number}")
        return cls(after=after, number=number)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeRecord:
    """One task instance's knowledge of its external job.

    ``token`` is persisted *before* submitting, so a crash between submit and persisting the id is
    healed by submitting again with the same token (the remote system returns the same job).
    ``external_id`` is None until the submit response was persisted. ``repair_intent`` is set from just
    before a repair request until its outcome is known.

    Version 2 added ``repair_intent``; version 1 records (no repair could be pending) are still read.
    """

    VERSION: ClassVar[int] = 2
    READABLE_VERSIONS: ClassVar[frozenset[int]] = frozenset({1, 2})

    kind: str
    token: str
    cycle: int
    generation: int
    external_id: ExternalId | None = None
    success_reported: bool = False
    repair_intent: RepairIntent | None = None

    def with_repair_intent(self, intent: RepairIntent | None) -> ResumeRecord:
        return dataclasses.replace(self, repair_intent=intent)

    def with_external_id(self, external_id: ExternalId) -> ResumeRecord:
        return dataclasses.replace(self, external_id=external_id)

    def reporting_success(self) -> ResumeRecord:
        return dataclasses.replace(self, success_reported=True)

    def to_json(self) -> dict[str, Any]:
        # asdict recurses, so a pending RepairIntent is stored as {"after": ..., "number": ...}.
        return {"schema": SCHEMA, "version": self.VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, raw: object, *, kind: str) -> ResumeRecord:
        """Parse a stored value; raise a ``RecordProblem`` subclass saying what is wrong with it."""
        if not isinstance(raw, Mapping) or raw.get("schema") != SCHEMA:
            raise ForeignRecord(
                f"the stored value ({_describe(raw)}) was not written by resumable-triggers", raw=raw
            )
        version = raw.get("version")
        if (
            not (isinstance(version, int) and not isinstance(version, bool))
            or version not in cls.READABLE_VERSIONS
        ):
            if isinstance(version, int) and not isinstance(version, bool) and version > cls.VERSION:
                raise UnknownRecordVersion(
                    f"the resume record has version {version}, this resumable-triggers reads version "
                    f"{cls.VERSION}: upgrade resumable-triggers on the workers",
                    raw=raw,
                    version=version,
                )
            raise CorruptRecord(f"the resume record has an invalid version {version!r}", raw=raw)
        if raw.get("kind") != kind:
            raise ForeignRecord(
                f"the resume record belongs to a {raw.get('kind')!r} job, not to a {kind!r} job", raw=raw
            )
        try:
            record = cls(
                kind=kind,
                token=_field(raw, "token", str),
                cycle=_field(raw, "cycle", int),
                generation=_field(raw, "generation", int),
                external_id=_external_id(raw.get("external_id")),
                success_reported=_field(raw, "success_reported", bool),
                repair_intent=RepairIntent.from_json(raw.get("repair_intent")) if version >= 2 else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord(f"the resume record is corrupt: {exc}", raw=raw) from exc
        if not record.token or len(record.token) > MAX_TOKEN_LENGTH or record.generation < 0:
            raise CorruptRecord("the resume record has an invalid token or generation", raw=raw)
        return record


def derive_token(
    *, dag_id: str, run_id: str, task_id: str, map_index: int, cycle: int, generation: int, salt: str = ""
) -> str:
    """The idempotency token of one (task instance, clear cycle, generation): deterministic, <= 64 chars.

    Deterministic so that two overlapping tries of the same task that both decide to submit the same
    generation converge on one remote run instead of racing to create two.
    """
    parts = [dag_id, run_id, task_id, map_index, cycle, generation, salt]
    identity = json.dumps(parts, separators=(",", ":"))
    digest = hashlib.sha256(identity.encode()).hexdigest()
    suffix = f"-c{cycle}-g{generation}"
    return f"rt-{digest[: MAX_TOKEN_LENGTH - 3 - len(suffix)]}{suffix}"


def _field(raw: Mapping[str, Any], name: str, kind: type) -> Any:
    value = raw[name]
    # bool is an int subclass: a stored True must not pass as generation 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {name!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def _external_id(value: object) -> ExternalId | None:
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise TypeError(f"field 'external_id' should be int, str or null, got {type(value).__name__}")


def _describe(raw: object) -> str:
    # Name the type, not the content: a foreign value may hold anything, secrets included.
    if isinstance(raw, Mapping):
        return f"a mapping with keys {sorted(map(str, raw))[:8]}"
    return f"a value of type {type(raw).__name__}"

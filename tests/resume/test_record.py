"""The resume record: round trips, and every way a stored value can be unusable."""

from __future__ import annotations

import json

import pytest

from resumable_triggers.resume import (
    CorruptRecord,
    ForeignRecord,
    RepairIntent,
    ResumeRecord,
    UnknownRecordVersion,
    derive_token,
)

RECORD = ResumeRecord(kind="databricks", token="rt-abc-c1-g0", cycle=1, generation=0, external_id=42)


def test_record_round_trips_through_json() -> None:
    """What is stored is exactly what is read back."""
    assert ResumeRecord.from_json(RECORD.to_json(), kind="databricks") == RECORD


def test_record_without_run_id_round_trips() -> None:
    """A token persisted before submit (no run id yet) survives storage."""
    pending = ResumeRecord(kind="databricks", token="t", cycle=3, generation=2)
    assert pending == ResumeRecord.from_json(pending.to_json(), kind="databricks")


@pytest.mark.parametrize("raw", [42, "123", ["a"], {"run_id": 5}, {"schema": "something-else"}, True])
def test_values_written_by_something_else_are_foreign(raw: object) -> None:
    """A bare run id (the provider's format), a list or an unmarked dict is recognised as foreign."""
    with pytest.raises(ForeignRecord) as info:
        ResumeRecord.from_json(raw, kind="databricks")
    assert raw == info.value.raw


def test_record_of_another_job_kind_is_foreign() -> None:
    """A record written by another resumable operator under the same key is not adopted."""
    with pytest.raises(ForeignRecord, match="'emr'"):
        ResumeRecord.from_json({**RECORD.to_json(), "kind": "emr"}, kind="databricks")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"generation": "1"}, "generation"),
        ({"generation": True}, "generation"),
        ({"cycle": None}, "cycle"),
        ({"external_id": 1.5}, "external_id"),
        ({"success_reported": "yes"}, "success_reported"),
        ({"token": 7}, "token"),
    ],
)
def test_record_with_wrong_field_types_is_corrupt_and_names_the_field(change: dict, field: str) -> None:
    """A damaged record is reported as corrupt, with the offending field in the message."""
    with pytest.raises(CorruptRecord, match=field):
        ResumeRecord.from_json({**RECORD.to_json(), **change}, kind="databricks")


def test_record_missing_a_field_is_corrupt() -> None:
    """A record with a field deleted is corrupt, not a crash."""
    raw = RECORD.to_json()
    del raw["token"]
    with pytest.raises(CorruptRecord, match="token"):
        ResumeRecord.from_json(raw, kind="databricks")


def test_record_with_an_over_long_token_is_corrupt() -> None:
    """Databricks would reject a token over 64 characters, so such a record cannot be resumed."""
    with pytest.raises(CorruptRecord):
        ResumeRecord.from_json({**RECORD.to_json(), "token": "x" * 65}, kind="databricks")


def test_record_from_a_newer_library_is_an_unknown_version() -> None:
    """A record written by a newer resumable-triggers is not guessed at."""
    with pytest.raises(UnknownRecordVersion) as info:
        ResumeRecord.from_json({**RECORD.to_json(), "version": 3}, kind="databricks")
    assert info.value.version == 3
    assert "upgrade" in str(info.value)


def test_version_1_record_is_read_with_no_repair_pending() -> None:
    """A record written before repairs existed (version 1, no repair_intent field) still resumes."""
    raw = {**RECORD.to_json(), "version": 1}
    del raw["repair_intent"]
    assert ResumeRecord.from_json(raw, kind="databricks") == RECORD


def test_pending_repair_intent_round_trips_through_json() -> None:
    """The intent written before runs/repair is read back whole, a never-repaired job's None included."""
    for after in (None, 7):
        record = RECORD.with_repair_intent(RepairIntent(after=after, number=2))
        assert ResumeRecord.from_json(json.loads(json.dumps(record.to_json())), kind="databricks") == record
    assert RECORD.to_json()["version"] == 2


@pytest.mark.parametrize(
    "intent",
    [
        {"after": "7", "number": 1},
        {"after": None, "number": 0},
        {"after": True, "number": 1},
        [1, 2],
        {"after": 1},
    ],
)
def test_record_with_an_unreadable_repair_intent_is_corrupt(intent: object) -> None:
    """A pending repair that cannot be read is corrupt (quarantined), never guessed at."""
    with pytest.raises(CorruptRecord, match="repair_intent"):
        ResumeRecord.from_json({**RECORD.to_json(), "repair_intent": intent}, kind="databricks")


def test_foreign_value_message_does_not_echo_its_content() -> None:
    """A foreign value may hold a secret: the message names its type and keys, never its values."""
    with pytest.raises(ForeignRecord) as info:
        ResumeRecord.from_json({"password": "hunter2"}, kind="databricks")
    assert "hunter2" not in str(info.value)


def test_token_is_deterministic_and_at_most_64_characters() -> None:
    """Two tries computing the token of the same generation agree; Databricks' 64-char limit holds."""
    args = dict(
        dag_id="d" * 250, run_id="r" * 250, task_id="t" * 250, map_index=-1, cycle=10**6, generation=10**6
    )
    first, second = derive_token(**args), derive_token(**args)  # type: ignore[arg-type]
    assert first == second
    assert len(first) <= 64


def test_token_changes_with_cycle_generation_and_identity() -> None:
    """A new clear cycle, a new generation or another task instance never reuses a token."""
    base = dict(dag_id="d", run_id="r", task_id="t", map_index=-1, cycle=1, generation=0)
    variants = [
        base,
        {**base, "cycle": 2},
        {**base, "generation": 1},
        {**base, "map_index": 0},
        {**base, "task_id": "u"},
        {**base, "salt": "quarantined-1"},
    ]
    tokens = {derive_token(**v) for v in variants}  # type: ignore[arg-type]
    assert len(variants) == len(tokens)

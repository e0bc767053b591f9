"""The audit record's own rules, each stated as a literal on both sides of its bound.

Found by mutation testing (`make mutation`, src/eventsvc/audit/record.py): these
rules held, but no test failed when one of them was changed.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from eventsvc.audit.record import (
    FORMAT,
    GENESIS,
    AuditEntry,
    ChainHead,
    check_key,
    next_record,
    record_hash,
    wire_form,
)

NOW = datetime(2026, 12, 2, 12, 0, 0, 123000, tzinfo=UTC)


def entry(**changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "actor": "token:tok_1",
        "action": "event.create",
        "target": "ev_1",
        "outcome": "success",
        "before": None,
        "after": {"name": "deploy"},
        "client_address": "127.0.0.1",
        "request_id": "req-1",
        "trace_id": None,
    }
    return AuditEntry(**(fields | changes))


@pytest.mark.parametrize("count", [0, -1])
def test_a_denial_count_below_one_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        entry(action="request.denied", outcome="denied", count=count)


@pytest.mark.parametrize("count", [None, 1, 2, 1000])
def test_a_denial_count_of_one_or_more_or_none_is_accepted(count: int | None) -> None:
    assert entry(action="request.denied", outcome="denied", count=count).count == count


def test_the_key_must_be_32_bytes_or_more() -> None:
    with pytest.raises(ValueError, match="at least 32 random bytes"):
        check_key(secrets.token_bytes(31), "audit key")
    check_key(secrets.token_bytes(32), "audit key")


def test_records_are_written_in_format_1() -> None:
    """The format number is hashed: a silent change would make every new record unverifiable
    by a verifier that knows format 1 only, and old records unverifiable by a new one."""
    key = secrets.token_bytes(32)
    record = next_record("chain-a", GENESIS, entry(), NOW, key)
    assert FORMAT == 1
    assert record.fields()["format"] == 1
    assert record.document()["format"] == 1
    assert record.hash == record_hash(record.fields(), key)


def test_entries_records_and_chain_heads_cannot_be_changed_after_creation() -> None:
    """A record is hashed when it is built: changing it afterwards would store a hash that
    no longer matches what is written next to it."""
    record = next_record("chain-a", GENESIS, entry(), NOW, secrets.token_bytes(32))
    for value, field in [(entry(), "actor"), (record, "actor"), (ChainHead(1, "a" * 64), "hash")]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, "changed")


def test_wire_form_drops_only_the_database_id() -> None:
    """Every other field is kept, including names that sort before ``_id`` (upper case,
    digits): a verifier must see exactly what was stored to check its hash."""
    document = {"_id": "x", "A": 1, "9": 2, "action": "event.create", "time": NOW}
    assert wire_form(document) == {
        "A": 1,
        "9": 2,
        "action": "event.create",
        "time": "2026-12-02T12:00:00.123Z",
    }

"""Splicing two versions of one chain is tampering, even when every record is authentic.

Whoever holds the HMAC key's output for two versions of a chain (say, a
backup and the live trail that diverged from it) can take records 1..k from
one and k+1.. from the other: same chain id, consecutive sequence numbers,
every record's own hash valid. Only the ``prev_hash`` link tells the splice
apart, so these tests fail if the verifier stops checking it (issue #14).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from eventsvc.audit.record import GENESIS, AuditEntry, AuditRecord, ChainHead, Document, next_record
from eventsvc.audit.verify import verify_chain

KEY = secrets.token_bytes(32)
CHAIN = "writer-a/1"
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def entry(target: str) -> AuditEntry:
    return AuditEntry(
        actor="token:splicetest000001",
        action="event.create",
        target=target,
        outcome="success",
        before=None,
        after={"_id": target},
        client_address=None,
        request_id=None,
        trace_id=None,
    )


def version_of_chain(label: str, length: int) -> list[AuditRecord]:
    """One version of CHAIN: ``length`` records whose content depends on ``label``."""
    records: list[AuditRecord] = []
    head = GENESIS
    for number in range(1, length + 1):
        when = START + timedelta(seconds=number)
        record = next_record(CHAIN, head, entry(f"{label}-{number}"), when, KEY)
        records.append(record)
        head = ChainHead(record.sequence, record.hash)
    return records


def wire(records: list[AuditRecord]) -> list[Document]:
    return [{**record.fields(), "hash": record.hash} for record in records]


def verdict(records: list[Document]) -> tuple[bool, str | None, int | None]:
    report = verify_chain(CHAIN, records, KEY, None, lambda: records)
    return report.ok, report.kind, report.broken_sequence


def test_each_version_on_its_own_verifies() -> None:
    assert verdict(wire(version_of_chain("live", 4))) == (True, None, None)
    assert verdict(wire(version_of_chain("backup", 4))) == (True, None, None)


def test_a_splice_of_two_versions_is_reported_where_they_meet() -> None:
    live = wire(version_of_chain("live", 4))
    backup = wire(version_of_chain("backup", 4))
    spliced = live[:2] + backup[2:]
    assert [record["sequence"] for record in spliced] == [1, 2, 3, 4]
    ok, kind, broken_sequence = verdict(spliced)
    assert not ok
    assert kind == "modified"
    assert broken_sequence == 3


def test_a_splice_at_the_first_record_is_reported() -> None:
    live = wire(version_of_chain("live", 3))
    backup = wire(version_of_chain("backup", 3))
    ok, kind, broken_sequence = verdict(backup[:1] + live[1:])
    assert (ok, kind, broken_sequence) == (False, "modified", 2)

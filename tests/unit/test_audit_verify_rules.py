"""The verifier's rules on plain data: checkpoints signed with the real Ed25519 key, records
hashed with a real HMAC key.

:func:`eventsvc.audit.verify.read_checkpoints` judges checkpoints read from
MongoDB, from an export file, and the anchors kept in Vault. These tests
sign checkpoints exactly as :class:`eventsvc.audit.log.AuditLog` does (same
fields, :func:`checkpoint_message`, :func:`checkpoint_hash`, the test
signer), including ones the writer would never sign, which only whoever
controls the signing key could make: the rules must hold for those too.
Each test fails if one rule of the verifier is weakened (issue #14).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventsvc.audit.record import (
    CHECKPOINT_FORMAT,
    GENESIS,
    GENESIS_HASH,
    AuditEntry,
    ChainHead,
    Document,
    checkpoint_hash,
    checkpoint_message,
    next_record,
)
from eventsvc.audit.verify import read_checkpoints, verify_chain
from support import CHECKPOINT_KEYS, CHECKPOINT_SIGNER

WRITER = "writer-rules"
CHAIN = f"{WRITER}/1"


def signed(number: int, prev_checkpoint: str, sequence: int) -> Document:
    """Checkpoint ``number`` of WRITER naming ``prev_checkpoint``; CHAIN's head at ``sequence``.

    The head's hash is a stand-in: these rules never look at records.
    """
    fields: Document = {
        "format": CHECKPOINT_FORMAT,
        "writer_id": WRITER,
        "number": number,
        "prev_checkpoint": prev_checkpoint,
        "reason": "count",
        "heads": {CHAIN: {"sequence": sequence, "hash": f"{sequence:064x}"}},
        "time": f"2026-12-01T12:00:{number:02d}.000Z",
    }
    return {
        **fields,
        "hash": checkpoint_hash(fields),
        "signature": CHECKPOINT_SIGNER.sign(checkpoint_message(fields)),
    }


def checkpoint_chain(count: int) -> list[Document]:
    """Checkpoints 1..count of WRITER, each naming the one before; CHAIN grows by 2 each time."""
    chain: list[Document] = []
    previous = GENESIS_HASH
    for number in range(1, count + 1):
        chain.append(signed(number, previous, 2 * number))
        previous = chain[-1]["hash"]
    return chain


def copy(checkpoint: Mapping[str, Any]) -> Document:
    """A separate copy (as an anchor read from Vault is): no string object is shared."""
    copied: Document = json.loads(json.dumps(checkpoint))
    return copied


# --- the checkpoint chain ---------------------------------------------------------------------


def test_an_intact_checkpoint_chain_has_no_problem() -> None:
    found = read_checkpoints(checkpoint_chain(4), CHECKPOINT_KEYS)
    assert (found.checked, found.bad, found.chain_problems) == (4, 0, [])
    assert found.heads == {CHAIN: ChainHead(8, f"{8:064x}")}


def test_a_first_checkpoint_not_starting_from_genesis_is_reported() -> None:
    """Checkpoint 1 must name the genesis hash, else history before it was cut off."""
    first = signed(1, "ab" * 32, 2)
    rest = [signed(2, first["hash"], 4)]
    found = read_checkpoints([first, *rest], CHECKPOINT_KEYS)
    assert found.bad == 0
    assert found.chain_problems == [
        f"writer {WRITER}: checkpoint 1 does not name the genesis hash"
        " (an earlier history was cut off)"
    ]
    # An export taken with --from takes the first checkpoint's link on trust.
    assert read_checkpoints([first, *rest], CHECKPOINT_KEYS, partial=True).chain_problems == []


@pytest.mark.parametrize("named", ["checkpoint 2", GENESIS_HASH, "f" * 64])
def test_a_checkpoint_naming_the_wrong_predecessor_is_named_with_both_numbers(named: str) -> None:
    """An even number (4 names 3): a message computed as ``4 ^ 1`` would say 5.

    The wrong names sort before and after the right one: any of them is wrong.
    """
    chain = checkpoint_chain(3)
    chain.append(signed(4, chain[1]["hash"] if named == "checkpoint 2" else named, 8))
    found = read_checkpoints(chain, CHECKPOINT_KEYS)
    assert found.chain_problems == [f"writer {WRITER}: checkpoint 4 does not name checkpoint 3"]


def test_checkpoints_missing_from_the_middle_are_counted() -> None:
    """1 and 4 kept (odd, then even: ``1 ^ 1`` and ``4 ^ 1`` would say 0 and 5)."""
    chain = checkpoint_chain(4)
    found = read_checkpoints([chain[0], chain[3]], CHECKPOINT_KEYS)
    assert found.chain_problems == [f"writer {WRITER}: checkpoint(s) 2 to 3 missing"]


def test_a_checkpoint_twice_in_a_file_is_reported_as_a_duplicate() -> None:
    """An export is read as it comes: a copied checkpoint line is not the writer's history."""
    chain = checkpoint_chain(3)
    found = read_checkpoints([*chain[:2], copy(chain[1]), chain[2]], CHECKPOINT_KEYS)
    assert (found.checked, found.bad) == (4, 0)
    assert found.chain_problems == [f"writer {WRITER}: checkpoint 2 appears twice"]


def test_checkpoints_missing_from_the_start_are_counted() -> None:
    """The first one left is number 4 (even: ``4 ^ 1`` would say 1 to 5)."""
    found = read_checkpoints(checkpoint_chain(5)[3:], CHECKPOINT_KEYS)
    assert found.chain_problems == [f"writer {WRITER}: checkpoints 1 to 3 missing"]


# --- anchors (the copies kept outside MongoDB) ------------------------------------------------


def test_an_anchor_equal_to_the_stored_checkpoint_is_no_problem() -> None:
    stored = checkpoint_chain(2)
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[copy(stored[-1])])
    assert (found.checked, found.bad, found.chain_problems) == (3, 0, [])
    assert found.anchored == [
        f"writer {WRITER}: last anchored checkpoint 2 at {stored[-1]['time']};"
        " records after it are covered by no anchor"
    ]


def test_an_anchor_ahead_of_the_database_reports_what_the_database_lacks() -> None:
    """Checkpoints 3 and 4 and the records they vouch for were removed from MongoDB."""
    everything = checkpoint_chain(4)
    found = read_checkpoints(everything[:2], CHECKPOINT_KEYS, anchors=[copy(everything[-1])])
    assert (found.bad, found.chain_problems) == (
        0,
        [f"writer {WRITER}: checkpoint(s) 3 to 3 missing"],
    )
    assert found.heads == {CHAIN: ChainHead(8, f"{8:064x}")}
    assert found.latest[WRITER]["number"] == 4


def test_a_stored_checkpoint_that_differs_from_its_anchor_is_reported() -> None:
    """Both signed, same number, different content: one of them is not the writer's history."""
    stored = checkpoint_chain(2)
    other = signed(2, stored[0]["hash"], 3)
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[copy(other)])
    assert found.bad == 0
    assert found.chain_problems == [f"writer {WRITER}: checkpoint 2 differs from its anchor"]


def test_a_forged_anchor_is_counted_and_reported() -> None:
    stored = checkpoint_chain(2)
    forged = {**copy(stored[-1]), "heads": {CHAIN: {"sequence": 2, "hash": f"{2:064x}"}}}
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[forged])
    assert (found.checked, found.bad) == (3, 1)
    assert found.chain_problems == [f"an anchor of writer {WRITER} is forged"]
    assert found.anchored == []
    assert found.heads == {CHAIN: ChainHead(4, f"{4:064x}")}


# --- records ------------------------------------------------------------------------------------


def test_a_chain_longer_than_256_records_verifies() -> None:
    """Sequence numbers are compared by value: CPython shares int objects only up to 256."""
    key = secrets.token_bytes(32)
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    records: list[Document] = []
    head = GENESIS
    for number in range(1, 301):
        entry = AuditEntry(
            actor="token:rulestest0000001",
            action="event.create",
            target=f"event-{number}",
            outcome="success",
            before=None,
            after={"_id": f"event-{number}"},
            client_address=None,
            request_id=None,
            trace_id=None,
        )
        record = next_record(CHAIN, head, entry, start + timedelta(seconds=number), key)
        records.append({**record.fields(), "hash": record.hash})
        head = ChainHead(record.sequence, record.hash)
    report = verify_chain(CHAIN, records, key, head, lambda: records)
    assert (report.ok, report.records_checked) == (True, 300), report.describe()

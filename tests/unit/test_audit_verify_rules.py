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
from dataclasses import FrozenInstanceError
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
from eventsvc.audit.verify import (
    ChainReport,
    VerifyReport,
    checkpoint_verdicts,
    read_checkpoints,
    verify_chain,
)
from support import CHECKPOINT_KEYS, CHECKPOINT_SIGNER

WRITER = "writer-rules"
CHAIN = f"{WRITER}/1"


def signed(number: int, prev_checkpoint: str, sequence: int, /, **changes: Any) -> Document:
    """Checkpoint ``number`` of WRITER naming ``prev_checkpoint``; CHAIN's head at ``sequence``.

    The head's hash is a stand-in: these rules never look at records.
    ``changes`` replace fields before signing (shapes the writer never signs).
    """
    fields: Document = {
        "format": CHECKPOINT_FORMAT,
        "writer_id": WRITER,
        "number": number,
        "prev_checkpoint": prev_checkpoint,
        "reason": "count",
        "heads": {CHAIN: {"sequence": sequence, "hash": f"{sequence:064x}"}},
        "time": f"2026-12-01T12:{number // 60 % 60:02d}:{number % 60:02d}.000Z",
        **changes,
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


@pytest.mark.parametrize("named", ["ab" * 32, "0" * 63, ""])
def test_a_first_checkpoint_not_starting_from_genesis_is_reported(named: str) -> None:
    """Checkpoint 1 must name the genesis hash, else history before it was cut off.

    (What it names may sort after the genesis hash or before it.)
    """
    first = signed(1, named, 2)
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


@pytest.mark.parametrize(
    ("kept", "missing"), [((1, 4), "2 to 3"), ((1, 2, 3, 6), "4 to 5"), ((1, 3), "2 to 2")]
)
def test_checkpoints_missing_from_the_middle_are_counted(
    kept: tuple[int, ...], missing: str
) -> None:
    """Odd and even neighbours, so that no bit trick on the numbers gives the same range."""
    chain = checkpoint_chain(6)
    found = read_checkpoints([chain[number - 1] for number in kept], CHECKPOINT_KEYS)
    assert found.chain_problems == [f"writer {WRITER}: checkpoint(s) {missing} missing"]


def test_checkpoints_read_out_of_order_are_reported_as_moved() -> None:
    """Stored order 1, 2, 4, 3: checkpoint 3 is compared with the one read just before it."""
    chain = checkpoint_chain(4)
    found = read_checkpoints([chain[0], chain[1], chain[3], chain[2]], CHECKPOINT_KEYS)
    assert found.chain_problems == [
        f"writer {WRITER}: checkpoint 3 comes after checkpoint 4 (checkpoints moved)"
    ]
    assert found.heads == {CHAIN: ChainHead(8, f"{8:064x}")}


def test_a_checkpoint_twice_in_a_file_is_reported_as_a_duplicate() -> None:
    """An export is read as it comes: a copied checkpoint line is not the writer's history."""
    chain = checkpoint_chain(3)
    found = read_checkpoints([*chain[:2], copy(chain[1]), chain[2]], CHECKPOINT_KEYS)
    assert (found.checked, found.bad) == (4, 0)
    assert found.chain_problems == [f"writer {WRITER}: checkpoint 2 appears twice"]


@pytest.mark.parametrize("number", [0, -3])
def test_a_checkpoint_numbered_below_1_is_bad_even_validly_signed(number: int) -> None:
    """Numbers start at 1: only the key's holder could sign one below, and it is not history."""
    found = read_checkpoints([signed(number, GENESIS_HASH, 2)], CHECKPOINT_KEYS)
    assert (found.checked, found.bad, found.forged, found.heads) == (1, 1, {CHAIN: 2}, {})
    first = read_checkpoints([signed(1, GENESIS_HASH, 2)], CHECKPOINT_KEYS)
    assert (first.bad, first.chain_problems) == (0, [])


def test_a_first_checkpoint_naming_genesis_but_numbered_4_misses_1_to_3() -> None:
    found = read_checkpoints([signed(4, GENESIS_HASH, 8)], CHECKPOINT_KEYS)
    assert found.chain_problems == [f"writer {WRITER}: checkpoints 1 to 3 missing"]


def test_checkpoints_missing_from_the_start_are_counted() -> None:
    """The first one left is number 4 (even: ``4 ^ 1`` would say 1 to 5)."""
    found = read_checkpoints(checkpoint_chain(5)[3:], CHECKPOINT_KEYS)
    assert found.chain_problems == [f"writer {WRITER}: checkpoints 1 to 3 missing"]


def test_numbers_above_256_are_compared_by_value() -> None:
    """A long-running writer's checkpoints 299 and 300 (an export with --from), anchored."""
    first = signed(299, "ab" * 32, 598)
    last = signed(300, first["hash"], 600)
    stored = [copy(first), copy(last)]
    found = read_checkpoints(stored, CHECKPOINT_KEYS, partial=True, anchors=[copy(last)])
    assert (found.bad, found.chain_problems) == (0, [])
    twice = read_checkpoints([*stored, copy(last)], CHECKPOINT_KEYS, partial=True)
    assert twice.chain_problems == [f"writer {WRITER}: checkpoint 300 appears twice"]


# --- forged and malformed checkpoints ---------------------------------------------------------


def test_a_forged_checkpoint_does_not_stop_the_reading_of_the_others() -> None:
    chain = checkpoint_chain(4)
    forged = {**signed(5, chain[-1]["hash"], 20), "signature": chain[0]["signature"]}
    found = read_checkpoints([forged, *chain], CHECKPOINT_KEYS)
    assert (found.checked, found.bad, found.chain_problems) == (5, 1, [])
    assert found.forged == {CHAIN: 20}
    assert found.heads == {CHAIN: ChainHead(8, f"{8:064x}")}


@pytest.mark.parametrize(("head", "claimed"), [("garbage", 0), ({"sequence": "9"}, 0)])
def test_a_forged_checkpoint_with_a_malformed_head_claims_sequence_0(
    head: object, claimed: int
) -> None:
    forged = {**signed(1, GENESIS_HASH, 2), "heads": {CHAIN: head}}
    found = read_checkpoints([forged], CHECKPOINT_KEYS)
    assert (found.bad, found.forged, found.heads) == (1, {CHAIN: claimed}, {})


@pytest.mark.parametrize(
    "malformed",
    [
        {"number": "2"},
        {"writer_id": 7},
        {"hash": "0" * 64},  # the stored hash is not the signed content's (it is not signed)
        {"hash": "f" * 64},
        {"reason": float("nan")},  # JSON allows NaN; canonical JSON does not
        {"reason": {"not", "json"}},  # a type with no JSON form (say, from BSON)
    ],
    ids=["number-text", "writer-number", "hash-low", "hash-high", "nan", "set"],
)
def test_a_validly_signed_but_malformed_checkpoint_is_bad(malformed: Document) -> None:
    """A signature is not enough: the checkpoint must be well formed, its hash its own."""
    chain = checkpoint_chain(2)
    if set(malformed) <= {"number", "writer_id"}:
        odd = signed(2, chain[0]["hash"], 4, **malformed)  # signed as it is
    else:
        odd = {**chain[1], **malformed}
    found = read_checkpoints([chain[0], odd], CHECKPOINT_KEYS)
    assert (found.checked, found.bad) == (2, 1)
    assert found.heads == {CHAIN: ChainHead(2, f"{2:064x}")}


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


@pytest.mark.parametrize("sorts", ["before", "after"])
def test_a_stored_checkpoint_that_differs_from_its_anchor_is_reported(sorts: str) -> None:
    """Both signed, same number, different content: one of them is not the writer's history.

    The anchor's hash sorts before or after the stored one's: either way it differs.
    """
    stored = checkpoint_chain(2)
    others = (signed(2, stored[0]["hash"], sequence) for sequence in range(5, 100))
    if sorts == "before":
        other = next(c for c in others if c["hash"] < stored[1]["hash"])
    else:
        other = next(c for c in others if c["hash"] > stored[1]["hash"])
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[copy(other)])
    assert found.bad == 0
    assert found.chain_problems == [f"writer {WRITER}: checkpoint 2 differs from its anchor"]


def test_an_anchor_behind_the_database_lowers_no_head() -> None:
    """Anchoring failed after checkpoint 2 (logged, not fatal); MongoDB holds 3."""
    stored = checkpoint_chain(3)
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[copy(stored[1])])
    assert (found.bad, found.chain_problems) == (0, [])
    assert found.heads == {CHAIN: ChainHead(6, f"{6:064x}")}
    assert found.latest[WRITER]["number"] == 3


def test_a_forged_anchor_does_not_stop_the_reading_of_the_others() -> None:
    everything = checkpoint_chain(3)
    forged = {**copy(everything[2]), "signature": everything[0]["signature"]}
    found = read_checkpoints(everything[:1], CHECKPOINT_KEYS, anchors=[forged, copy(everything[1])])
    assert (found.checked, found.bad) == (3, 1)
    assert found.chain_problems == [f"an anchor of writer {WRITER} is forged"]
    assert found.heads == {CHAIN: ChainHead(4, f"{4:064x}")}


def test_a_forged_anchor_is_counted_and_reported() -> None:
    stored = checkpoint_chain(2)
    forged = {**copy(stored[-1]), "heads": {CHAIN: {"sequence": 2, "hash": f"{2:064x}"}}}
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[forged])
    assert (found.checked, found.bad) == (3, 1)
    assert found.chain_problems == [f"an anchor of writer {WRITER} is forged"]
    assert found.anchored == []
    assert found.heads == {CHAIN: ChainHead(4, f"{4:064x}")}


@pytest.mark.parametrize("order", ["stored first", "stored second"])
def test_an_anchor_differing_from_either_copy_of_a_duplicated_checkpoint_is_reported(
    order: str,
) -> None:
    """Checkpoint 2 stored twice, once as anchored and once not: the other copy is not history."""
    stored = checkpoint_chain(2)
    other = signed(2, stored[0]["hash"], 5)
    copies = [stored[1], other] if order == "stored first" else [other, stored[1]]
    found = read_checkpoints([stored[0], *copies], CHECKPOINT_KEYS, anchors=[copy(stored[1])])
    assert f"writer {WRITER}: checkpoint 2 differs from its anchor" in found.chain_problems


# --- signed heads of one record must agree ------------------------------------------------------


def head(sequence: int, hash_: str) -> dict[str, Document]:
    return {CHAIN: {"sequence": sequence, "hash": hash_}}


FORKED = f"{4:064x}".replace("0", "f", 1)  # another hash for record 4


def test_an_idle_chain_signed_again_with_the_same_head_is_no_problem() -> None:
    first = signed(1, GENESIS_HASH, 4)
    second = signed(2, first["hash"], 4)
    found = read_checkpoints([first, second], CHECKPOINT_KEYS)
    assert found.chain_problems == []
    assert found.heads == {CHAIN: ChainHead(4, f"{4:064x}")}


@pytest.mark.parametrize("order", ["forked last", "forked first"])
def test_two_checkpoints_signing_different_hashes_for_one_record_are_reported(
    order: str,
) -> None:
    """History rewritten after checkpoint 2 and signed again by checkpoint 3 (same record 4).

    The head read first stays the one the records are compared with.
    """
    first = signed(1, GENESIS_HASH, 2)
    second = signed(2, first["hash"], 4)
    third = signed(3, second["hash"], 4, heads=head(4, FORKED))
    stored = [first, second, third] if order == "forked last" else [first, third, second]
    found = read_checkpoints(stored, CHECKPOINT_KEYS)
    assert found.bad == 0
    assert f"chain {CHAIN}: signed checkpoints disagree on record 4" in found.chain_problems
    read_first = stored[1]["heads"][CHAIN]["hash"]
    assert found.heads == {CHAIN: ChainHead(4, read_first)}


def test_a_fork_below_the_head_is_reported_whatever_came_in_between() -> None:
    """Checkpoint 3 signs record 2 again, with another hash, after checkpoint 2 signed record 4."""
    first = signed(1, GENESIS_HASH, 2)
    second = signed(2, first["hash"], 4)
    third = signed(3, second["hash"], 2, heads=head(2, FORKED))
    found = read_checkpoints([first, second, third], CHECKPOINT_KEYS)
    assert found.chain_problems == [f"chain {CHAIN}: signed checkpoints disagree on record 2"]
    assert found.heads == {CHAIN: ChainHead(4, f"{4:064x}")}


def test_an_anchor_disagreeing_with_another_checkpoint_on_a_record_is_reported_once() -> None:
    """The anchor (checkpoint 3) signs record 4 as the stored checkpoint 2 does not."""
    stored = checkpoint_chain(2)
    anchor = signed(3, stored[1]["hash"], 4, heads=head(4, FORKED))
    found = read_checkpoints(stored, CHECKPOINT_KEYS, anchors=[anchor, copy(anchor)])
    assert (
        found.chain_problems.count(f"chain {CHAIN}: signed checkpoints disagree on record 4") == 1
    )


# --- what only the checkpoints can tell ---------------------------------------------------------


def test_a_chain_checkpointed_but_without_records_is_truncated_unless_partial() -> None:
    checkpoints = read_checkpoints(checkpoint_chain(2), CHECKPOINT_KEYS)
    message = "checkpointed up to record 4, but no record is in the file"
    assert checkpoint_verdicts([], checkpoints, absent="no record is in the file") == [
        ChainReport(CHAIN, 0, "truncated", 1, message)
    ]
    assert checkpoint_verdicts([], checkpoints, absent=None) == []


def test_a_forged_checkpoint_naming_a_chain_without_records_is_reported() -> None:
    forged = {**signed(1, GENESIS_HASH, 9), "signature": signed(2, "ab" * 32, 9)["signature"]}
    checkpoints = read_checkpoints([forged], CHECKPOINT_KEYS)
    message = "a checkpoint with a bad signature names this chain, which has no records"
    assert checkpoint_verdicts([], checkpoints, absent="no record is left") == [
        ChainReport(CHAIN, 0, "bad-checkpoint", 9, message)
    ]


def test_a_forged_checkpoint_marks_an_intact_chain_and_leaves_a_broken_one_as_it_is() -> None:
    forged = {**signed(1, GENESIS_HASH, 9), "signature": signed(2, "ab" * 32, 9)["signature"]}
    checkpoints = read_checkpoints([forged], CHECKPOINT_KEYS)
    broken = ChainReport(CHAIN, 3, "deleted", 3, "record 3 missing; the chain goes on at 4")
    assert checkpoint_verdicts([broken], checkpoints, absent=None) == [broken]
    message = "a checkpoint naming this chain has a bad signature (forged or altered)"
    assert checkpoint_verdicts([ChainReport(CHAIN, 5)], checkpoints, absent=None) == [
        ChainReport(CHAIN, 5, "bad-checkpoint", 9, message)
    ]


# --- records --------------------------------------------------------------------------------------

KEY = secrets.token_bytes(32)
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def entry(target: str, actor: str = "token:rulestest0000001") -> AuditEntry:
    return AuditEntry(
        actor=actor,
        action="event.create",
        target=target,
        outcome="success",
        before=None,
        after={"_id": target},
        client_address=None,
        request_id=None,
        trace_id=None,
    )


def follow(head: ChainHead, target: str, actor: str = "token:rulestest0000001") -> Document:
    """The record after ``head`` in CHAIN, as the writer (or an insider with KEY) makes it."""
    when = START + timedelta(seconds=head.sequence + 1)
    record = next_record(CHAIN, head, entry(target, actor), when, KEY)
    return {**record.fields(), "hash": record.hash}


def chain_of(length: int) -> list[Document]:
    records: list[Document] = []
    head = GENESIS
    for number in range(1, length + 1):
        records.append(follow(head, f"event-{number}"))
        head = ChainHead(records[-1]["sequence"], records[-1]["hash"])
    return records


def head_of(record: Document) -> ChainHead:
    return ChainHead(record["sequence"], record["hash"])


def judge(records: list[Document], checkpointed: ChainHead | None = None) -> ChainReport:
    return verify_chain(CHAIN, records, KEY, checkpointed, lambda: records)


def signed_head(record: Document) -> ChainHead:
    """The head a signed checkpoint names, read back as the verifier reads it (from JSON)."""
    checkpoint = signed(
        1, GENESIS_HASH, 0, heads={CHAIN: {"sequence": record["sequence"], "hash": record["hash"]}}
    )
    return read_checkpoints([copy(checkpoint)], CHECKPOINT_KEYS).heads[CHAIN]


def test_a_chain_longer_than_256_records_verifies() -> None:
    """Sequence numbers are compared by value: CPython shares int objects only up to 256."""
    records = chain_of(300)
    report = judge(records, signed_head(records[-1]))
    assert (report.ok, report.records_checked) == (True, 300), report.describe()


def test_a_record_deleted_past_256_is_named_alone() -> None:
    records = chain_of(300)
    report = judge(records[:279] + records[280:])
    assert (report.kind, report.broken_sequence, report.message) == (
        "deleted",
        280,
        "record 280 missing; the chain goes on at 281",
    )


def test_a_record_twice_in_a_row_has_an_invalid_sequence() -> None:
    """An export with a record line repeated: the copy is not the next record."""
    records = chain_of(3)
    report = judge([records[0], records[1], records[1], records[2]])
    assert (report.kind, report.broken_sequence, report.message) == (
        "modified",
        3,
        "record has an invalid sequence 2",
    )


def middling(previous: Document, target: str) -> Document:
    """The record after ``previous`` whose hash starts with 4..b: rewrites sort either side of it.

    (The HMAC key is new in each run: the hash of a fixed record could be
    anywhere, and one near ``f`` leaves almost no rewrite sorting after it.)
    """
    for attempt in range(100):
        record = follow(head_of(previous), target, f"token:middle{attempt:010d}")
        if "4" <= record["hash"][0] <= "b":
            return record
    raise AssertionError("no record found")  # 2**-100


def rewritten(original: Document, previous: Document, sorts: str) -> Document:
    """An insider's authentic replacement of ``original`` whose hash sorts before/after it."""
    for attempt in range(100):
        candidate = follow(head_of(previous), original["target"], f"token:insider{attempt:09d}")
        if (candidate["hash"] < original["hash"]) == (sorts == "before"):
            return candidate
    raise AssertionError("no rewrite found")  # at most (3/4)**100 for a middling original


@pytest.mark.parametrize("sorts", ["before", "after"])
def test_an_insider_rewriting_the_checkpointed_last_record_is_caught(sorts: str) -> None:
    """With the HMAC key every record verifies and links; only the signed head differs."""
    records = chain_of(299)
    records.append(middling(records[-1], "event-300"))
    checkpointed = signed_head(records[-1])
    records[-1] = rewritten(records[-1], records[-2], sorts)
    report = judge(records, checkpointed)
    assert (report.kind, report.broken_sequence, report.message) == (
        "truncated",
        300,
        "record 300 is not the one checkpointed (chain cut back and rewritten)",
    )


@pytest.mark.parametrize("sorts", ["before", "after"])
def test_a_record_linking_elsewhere_is_modified(sorts: str) -> None:
    """Authentic (made with the key), but its prev_hash is not record 2's hash."""
    records = chain_of(3)
    elsewhere = "0" * 63 + "1" if sorts == "before" else "f" * 64
    assert (elsewhere < records[1]["hash"]) == (sorts == "before")
    records[2] = follow(ChainHead(2, elsewhere), "event-3")
    report = judge(records)
    assert (report.kind, report.broken_sequence, report.message) == (
        "modified",
        3,
        "prev_hash does not link to record 2",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("target", float("nan")), ("target", b"bytes"), ("target", {"a set"})],
    ids=["nan", "bytes", "set"],
)
def test_a_record_without_a_canonical_form_is_reported_not_crashed_on(
    field: str, value: object
) -> None:
    """JSON files may hold NaN, BSON binary data: such a record cannot be ours."""
    records = chain_of(3)
    records[1] = {**records[1], field: value}
    report = judge(records)
    assert (report.ok, report.broken_sequence) == (False, 2)


def test_a_verdict_cannot_be_changed_after_the_fact() -> None:
    report = judge(chain_of(1))
    attribute = "kind"
    with pytest.raises(FrozenInstanceError):
        setattr(report, attribute, "modified")


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_a_report_finds_the_verdict_of_the_chain_asked_for(order: str) -> None:
    verdicts = [ChainReport(f"{WRITER}/{number}", number) for number in (1, 2, 3)]
    if order == "descending":
        verdicts.reverse()
    report = VerifyReport(
        chains=tuple(verdicts), records_checked=6, checkpoints_checked=0, bad_checkpoints=0
    )
    asked = "".join([WRITER, "/2"])  # equal, but not the same string object
    assert report.chain(asked) == ChainReport(f"{WRITER}/2", 2)

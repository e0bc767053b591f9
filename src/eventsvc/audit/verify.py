"""Verification: find the first broken link of every audit chain, and name the tampering.

Detects records that were modified, deleted (also when the rest were
renumbered to close the gap), inserted or reordered, chains cut back
("truncated", against the last signed checkpoint) and forged checkpoints
("bad-checkpoint"). Checkpoints are Ed25519-signed (checked with the public
key alone, :mod:`eventsvc.audit.signing`) and chained per writer, so a
checkpoint removed from the middle, or moved, is reported too.
:func:`verify` reads a database; :func:`verify_chain`,
:func:`read_checkpoints` and :func:`checkpoint_verdicts` take plain dicts,
so :mod:`eventsvc.cli.audit_file` judges an exported file with the very
same rules.

This module does not import pymongo (nor does :mod:`eventsvc.audit.record`,
the only other module it needs): ``eventsvc audit verify`` runs on an
auditor's machine with the export and the key, not a database driver.
:func:`verify` only calls ``find`` on the database handle it is given.
"""

from __future__ import annotations

import hmac
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from eventsvc.audit.record import (
    AUDIT,
    AUDIT_CHECKPOINTS,
    GENESIS,
    GENESIS_HASH,
    HEX64,
    ChainHead,
    Document,
    check_key,
    checkpoint_hash,
    checkpoint_message,
    record_hash,
    wire_form,
)
from eventsvc.audit.signing import CheckpointKeys, signature_ok

if TYPE_CHECKING:  # for the annotations only; see the module docstring
    from pymongo.database import Database

ProblemKind = Literal["modified", "deleted", "inserted", "reordered", "truncated", "bad-checkpoint"]
Problem = tuple[ProblemKind, int, str]
ChainLoader = Callable[[], list[Document]]

_ASCENDING = 1  # pymongo.ASCENDING, spelled out so that this module never imports pymongo


@dataclass(frozen=True)
class ChainReport:
    """The verdict on one chain: ok, or its first broken link."""

    chain: str
    records_checked: int
    kind: ProblemKind | None = None
    broken_sequence: int | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind is None

    def describe(self) -> str:
        if self.ok:
            return f"{self.chain}: ok ({self.records_checked} records)"
        return f"{self.chain}: {self.kind} at sequence {self.broken_sequence}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    """Every chain's verdict, plus what was read."""

    chains: tuple[ChainReport, ...]
    records_checked: int
    checkpoints_checked: int
    bad_checkpoints: int
    checkpoint_chain_problems: tuple[str, ...] = ()
    """Per writer: checkpoints missing from, or moved within, its checkpoint chain."""
    anchored: tuple[str, ...] = ()
    """Per anchored writer: its last anchored checkpoint, past which nothing is covered."""

    @property
    def ok(self) -> bool:
        return (
            self.bad_checkpoints == 0
            and not self.checkpoint_chain_problems
            and all(chain.ok for chain in self.chains)
        )

    @property
    def problems(self) -> tuple[ChainReport, ...]:
        return tuple(chain for chain in self.chains if not chain.ok)

    def chain(self, chain_id: str) -> ChainReport:
        return next(report for report in self.chains if report.chain == chain_id)


@dataclass
class Checkpoints:
    """What the checkpoints say: the highest signed head per chain, and forged claims."""

    heads: dict[str, ChainHead]
    forged: dict[str, int]  # chain -> sequence claimed by a checkpoint with a bad signature
    checked: int = 0
    bad: int = 0
    chain_problems: list[str] = field(default_factory=list)
    anchored: list[str] = field(default_factory=list)
    latest: dict[str, Document] = field(default_factory=dict)
    """Per writer, its authentic checkpoint with the highest number."""
    signed: dict[tuple[str, int], str] = field(default_factory=dict)
    """Every (chain, record) an authentic checkpoint or anchor names, and the hash it gives."""


def verify(
    database: Database[Document],
    hmac_key: bytes,
    checkpoint_keys: CheckpointKeys,
    *,
    anchors: Iterable[Mapping[str, Any]] = (),
) -> VerifyReport:
    """Check every chain in ``database`` and report the first broken link of each.

    Reads records in ``(chain, sequence)`` order through the unique index,
    one at a time, so memory does not grow with the trail; a broken chain
    is re-read once to tell which kind of tampering broke it.
    """
    check_key(hmac_key, "hmac_key")
    checkpoints = _read_checkpoints(database, checkpoint_keys, anchors)
    reports: list[ChainReport] = []
    cursor = database[AUDIT].find({}, sort=[("chain", _ASCENDING), ("sequence", _ASCENDING)])
    for chain, documents in itertools.groupby(cursor, key=lambda document: document["chain"]):
        reports.append(
            verify_chain(
                str(chain),
                (wire_form(document) for document in documents),
                hmac_key,
                checkpoints.heads.get(chain),
                partial(_load_chain, database, chain),
            )
        )
    reports = checkpoint_verdicts(reports, checkpoints, absent="no record is left")
    return VerifyReport(
        chains=tuple(reports),
        records_checked=sum(report.records_checked for report in reports),
        checkpoints_checked=checkpoints.checked,
        bad_checkpoints=checkpoints.bad,
        checkpoint_chain_problems=tuple(checkpoints.chain_problems),
        anchored=tuple(checkpoints.anchored),
    )


def _read_checkpoints(
    database: Database[Document], keys: CheckpointKeys, anchors: Iterable[Mapping[str, Any]]
) -> Checkpoints:
    stored = database[AUDIT_CHECKPOINTS].find({}, sort=[("time", _ASCENDING), ("_id", _ASCENDING)])
    return read_checkpoints((wire_form(document) for document in stored), keys, anchors=anchors)


def read_checkpoints(
    checkpoints: Iterable[Mapping[str, Any]],
    keys: CheckpointKeys,
    *,
    partial: bool = False,
    anchors: Iterable[Mapping[str, Any]] = (),
) -> Checkpoints:
    """Read checkpoints in stored (time) order: signed heads, forged claims, chain breaks.

    ``partial`` (an export with --from): a writer's first checkpoint may come
    after its checkpoint 1, and its ``prev_checkpoint`` is taken on trust.
    ``anchors``: copies kept outside MongoDB (each writer's last one, see
    :mod:`eventsvc.vault.anchors`). They are checked like the others and join
    their writer's chain, so checkpoints and records that an anchor vouches
    for but the database (or file) lacks are reported as missing.
    """
    found = Checkpoints(heads={}, forged={})
    by_writer: dict[str, list[Mapping[str, Any]]] = {}
    for checkpoint in checkpoints:
        found.checked += 1
        heads = checkpoint.get("heads")
        if not isinstance(heads, dict) or not _authentic_checkpoint(checkpoint, keys):
            found.bad += 1
            for chain, head in (heads or {}).items():
                found.forged[str(chain)] = _claimed_sequence(head)
            continue
        writer = str(checkpoint["writer_id"])
        earlier = by_writer.setdefault(writer, [])
        if earlier and int(checkpoint["number"]) < int(earlier[-1]["number"]):
            found.chain_problems.append(
                f"writer {writer}: checkpoint {checkpoint['number']} comes after checkpoint"
                f" {earlier[-1]['number']} (checkpoints moved)"
            )
        earlier.append(checkpoint)
        for chain, head in heads.items():
            _note_signed_head(found, str(chain), head)
    for anchor in anchors:
        found.checked += 1
        heads = anchor.get("heads")
        if not isinstance(heads, dict) or not _authentic_checkpoint(anchor, keys):
            found.bad += 1
            found.chain_problems.append(f"an anchor of writer {anchor.get('writer_id')} is forged")
            continue
        writer = str(anchor["writer_id"])
        found.anchored.append(
            f"writer {writer}: last anchored checkpoint {anchor['number']} at {anchor['time']};"
            " records after it are covered by no anchor"
        )
        same = [c for c in by_writer.get(writer, []) if c["number"] == anchor["number"]]
        if any(stored["hash"] != anchor["hash"] for stored in same):
            found.chain_problems.append(
                f"writer {writer}: checkpoint {anchor['number']} differs from its anchor"
            )
        elif not same:
            by_writer.setdefault(writer, []).append(anchor)
        for chain, head in heads.items():
            _note_signed_head(found, str(chain), head)
    for writer, chain in sorted(by_writer.items()):
        in_order = sorted(chain, key=lambda checkpoint: int(checkpoint["number"]))
        found.chain_problems.extend(_checkpoint_links(writer, in_order, partial=partial))
        found.latest[writer] = dict(in_order[-1])
    return found


def _note_signed_head(found: Checkpoints, chain: str, head: Mapping[str, Any]) -> None:
    """Keep the highest signed head of ``chain``; all signed hashes of one record must agree.

    Two authentic checkpoints naming different hashes for the same record mean
    the chain forked (history rewritten, then signed again), whatever order
    they are read in: neither may silently stand in for the other.
    """
    signed = ChainHead(int(head["sequence"]), str(head["hash"]))
    earlier = found.signed.setdefault((chain, signed.sequence), signed.hash)
    problem = f"chain {chain}: signed checkpoints disagree on record {signed.sequence}"
    if earlier != signed.hash and problem not in found.chain_problems:
        found.chain_problems.append(problem)
    known = found.heads.get(chain)
    if known is None or signed.sequence > known.sequence:
        found.heads[chain] = signed


def _checkpoint_links(
    writer: str, in_order: list[Mapping[str, Any]], *, partial: bool
) -> list[str]:
    """Each checkpoint must name the one before it; the first must be number 1."""
    problems: list[str] = []
    previous: Mapping[str, Any] | None = None
    for checkpoint in in_order:
        number = int(checkpoint["number"])
        if previous is None:
            if not partial and (number != 1 or checkpoint["prev_checkpoint"] != GENESIS_HASH):
                problems.append(f"writer {writer}: {_missing_start(number)}")
        elif number != int(previous["number"]) + 1:
            gap = _gap(int(previous["number"]), number)
            problems.append(f"writer {writer}: {gap}")
        elif checkpoint["prev_checkpoint"] != previous["hash"]:
            problems.append(
                f"writer {writer}: checkpoint {number} does not name checkpoint {number - 1}"
            )
        previous = checkpoint
    return problems


def checkpoint_verdicts(
    reports: list[ChainReport], checkpoints: Checkpoints, *, absent: str | None
) -> list[ChainReport]:
    """Add what only the checkpoints can tell to the per-chain reports.

    A chain a checkpoint names but whose records are all gone is truncated
    (``absent`` says where they are missing; None skips this, for partial
    exports); a chain named by a forged checkpoint is reported as such.
    """
    seen = {report.chain for report in reports}
    if absent is not None:
        for chain, head in sorted(checkpoints.heads.items()):
            if chain not in seen:
                message = f"checkpointed up to record {head.sequence}, but {absent}"
                reports = [*reports, ChainReport(chain, 0, "truncated", 1, message)]
    reports = [_with_forged_checkpoint(report, checkpoints.forged) for report in reports]
    seen = {report.chain for report in reports}
    for chain, sequence in sorted(checkpoints.forged.items()):
        if chain not in seen:
            message = "a checkpoint with a bad signature names this chain, which has no records"
            reports.append(ChainReport(chain, 0, "bad-checkpoint", sequence, message))
    return reports


def _authentic_checkpoint(checkpoint: Mapping[str, Any], keys: CheckpointKeys) -> bool:
    """Signed by the checkpoint key, its ``hash`` is its content's, and it is well formed.

    Well formed includes a number from 1 up: a writer numbers its checkpoints
    from 1, so only the key's holder could sign one below (not history).
    """
    number = checkpoint.get("number")
    if (
        not isinstance(number, int)
        or number < 1
        or not isinstance(checkpoint.get("writer_id"), str)
    ):
        return False
    try:
        message = checkpoint_message(checkpoint)
        digest = checkpoint_hash(checkpoint)
    except (TypeError, ValueError):
        return False
    return digest == checkpoint.get("hash") and signature_ok(
        message, checkpoint.get("signature"), keys
    )


def _claimed_sequence(head: object) -> int:
    """The sequence a checkpoint head claims (0 when it is malformed)."""
    if isinstance(head, Mapping) and isinstance(head.get("sequence"), int):
        return int(head["sequence"])
    return 0


def _load_chain(database: Database[Document], chain: str) -> list[Document]:
    """The links of one chain (no content), to diagnose a break."""
    return list(
        database[AUDIT].find(
            {"chain": chain},
            projection={"_id": False, "sequence": True, "hash": True, "prev_hash": True},
            sort=[("sequence", _ASCENDING)],
        )
    )


def verify_chain(
    chain: str,
    records: Iterable[Document],
    hmac_key: bytes,
    checkpointed: ChainHead | None,
    load_chain: ChainLoader,
    start: ChainHead = GENESIS,
) -> ChainReport:
    """Walk one chain from ``start``; stop at the first broken link."""
    last = start
    checked = 0
    for record in records:
        checked += 1
        problem = _link_problem(record, last, hmac_key, checkpointed, load_chain)
        if problem is None and checkpointed is not None:
            problem = _differs_from_checkpoint(record, checkpointed)
        if problem is not None:
            return ChainReport(chain, checked, *problem)
        last = ChainHead(int(record["sequence"]), str(record["hash"]))
    if checkpointed is not None and checkpointed.sequence > last.sequence:
        message = (
            f"the last checkpoint has record {checkpointed.sequence}; "
            f"the chain ends at {last.sequence}"
        )
        return ChainReport(chain, checked, "truncated", last.sequence + 1, message)
    return ChainReport(chain, checked)


def _link_problem(
    record: Document,
    previous: ChainHead,
    hmac_key: bytes,
    checkpointed: ChainHead | None,
    load_chain: ChainLoader,
) -> Problem | None:
    """Is ``record`` the authentic successor of ``previous``? If not, what broke?"""
    expected = previous.sequence + 1
    sequence = record.get("sequence")
    if not isinstance(sequence, int) or sequence < expected:
        return ("modified", expected, f"record has an invalid sequence {sequence!r}")
    if sequence > expected:
        missing = f"{expected}" if sequence == expected + 1 else f"{expected} to {sequence - 1}"
        return ("deleted", expected, f"record {missing} missing; the chain goes on at {sequence}")
    if not _authentic(record, hmac_key):
        return _diagnose(record, hmac_key, checkpointed, load_chain())
    if record.get("prev_hash") != previous.hash:
        return ("modified", sequence, f"prev_hash does not link to record {previous.sequence}")
    return None


def _authentic(record: Mapping[str, Any], hmac_key: bytes) -> bool:
    try:
        expected = record_hash(record, hmac_key)
    except (TypeError, ValueError, KeyError):
        return False
    return hmac.compare_digest(expected, str(record.get("hash", "")))


def _diagnose(
    record: Document,
    hmac_key: bytes,
    checkpointed: ChainHead | None,
    chain_links: list[Document],
) -> Problem:
    """Name the tampering that makes ``record`` (its chain's first bad one) fail its hash.

    - it is not shaped like a record at all ("inserted");
    - it links to a record no longer in the chain: records were deleted and
      the rest renumbered to close the gap ("deleted");
    - it is authentic at another sequence number: it was moved ("reordered");
    - the next record (or, at the end, a checkpoint) links to its hash: it
      is ours with changed content ("modified");
    - nothing links to it: we never wrote it ("inserted"). For the last
      record after the last checkpoint this cannot be told apart from a
      modification, and the message says so.
    """
    sequence = int(record["sequence"])
    hashes = {str(link.get("hash")) for link in chain_links}
    prev_hash = record.get("prev_hash")
    if not isinstance(prev_hash, str) or not re.match(HEX64, prev_hash):
        return ("inserted", sequence, f"record {sequence} is not an audit record at all")
    if prev_hash != GENESIS_HASH and prev_hash not in hashes:
        return (
            "deleted",
            sequence,
            f"record {sequence} links to a record that is no longer in the chain "
            "(records deleted and the rest renumbered)",
        )
    for link in chain_links:
        original = int(link["sequence"])
        if original != sequence and _authentic({**record, "sequence": original}, hmac_key):
            return (
                "reordered",
                sequence,
                f"record at sequence {sequence} was written as sequence {original}",
            )
    later = [link for link in chain_links if int(link["sequence"]) > sequence]
    if later:
        vouched = later[0].get("prev_hash") == record.get("hash")
        nothing_links = "the next record does not link to it"
    else:
        vouched = checkpointed == ChainHead(sequence, str(record.get("hash")))
        nothing_links = (
            "no record or checkpoint links to it (forged and appended, or the last record "
            "modified after the last checkpoint)"
        )
    if vouched:
        return ("modified", sequence, f"record {sequence} does not match its hash")
    return ("inserted", sequence, f"record {sequence} is not authentic and {nothing_links}")


def _differs_from_checkpoint(record: Document, checkpointed: ChainHead) -> Problem | None:
    sequence = int(record["sequence"])
    if sequence == checkpointed.sequence and record["hash"] != checkpointed.hash:
        message = f"record {sequence} is not the one checkpointed (chain cut back and rewritten)"
        return ("truncated", sequence, message)
    return None


def _with_forged_checkpoint(report: ChainReport, forged: Mapping[str, int]) -> ChainReport:
    """Mark an otherwise intact chain broken when a forged checkpoint names it."""
    if not report.ok or report.chain not in forged:
        return report
    message = "a checkpoint naming this chain has a bad signature (forged or altered)"
    return ChainReport(
        report.chain, report.records_checked, "bad-checkpoint", forged[report.chain], message
    )


def _missing_start(number: int) -> str:
    """What a writer's first checkpoint (when not number 1 naming the genesis hash) says is gone."""
    if number == 1:
        return "checkpoint 1 does not name the genesis hash (an earlier history was cut off)"
    return f"checkpoints 1 to {number - 1} missing"


def _gap(previous: int, number: int) -> str:
    """Between two checkpoints of a writer, in number order: the ones missing, or a duplicate."""
    if number == previous:
        return f"checkpoint {number} appears twice"
    return f"checkpoint(s) {previous + 1} to {number - 1} missing"

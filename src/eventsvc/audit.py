"""The tamper-evident audit trail: hash-chained records and signed checkpoints.

Every state change and every denied request gets one record. Records form
chains: each record carries ``sequence`` (1, 2, 3...), ``prev_hash`` (the
``hash`` of the record before it; 64 zeros for the first one, a public
genesis value that commits to nothing secret) and
``hash = HMAC-SHA-256(key, prev_hash || canonical record)``. The key comes
from Vault; it is never stored or logged, so whoever can write to MongoDB
but does not hold the key cannot forge, alter, remove or reorder a record
without :func:`verify` noticing.

**One chain per writer thread.** Each :class:`AuditLog` (one per process) is a
writer with a random ``writer_id``; each thread that appends gets its own
chain ``<writer_id>/<n>``. A chain per thread is finer than a chain per
process and keeps the same promise: no instance and no thread ever waits on
another one's chain head, and nothing is serialised on one document. A
restarted process is a new writer, hence new chains.

**The head advances only when the record is durable.** A record appended
inside the caller's transaction may still be rolled back, so the thread's
head then becomes *pending*. The next append of that thread settles it by
reading the chain's last record from MongoDB (within the caller's
transaction, if there is one, which sees its own uncommitted records), so an
aborted transaction's sequence number is simply reused and the chain stays
continuous. The unique index on ``(chain, sequence)`` is the backstop: two
records can never claim the same place in a chain.

**Checkpoints** sign every chain head of one writer (``audit_checkpoints``),
every ``checkpoint_every`` records and on :meth:`AuditLog.checkpoint` (the app
calls it periodically and on shutdown). They make a cut-off tail visible: records
deleted from the end of a chain are detected up to the last checkpoint;
records written after it can be dropped unnoticed, which is why checkpoints
should be written often and exported off the database host.

**Offline verification by an auditor.** :func:`export` yields JSON-ready
dicts (``"type": "record"`` or ``"checkpoint"``). For a record, remove
``type`` and ``hash``; the rest is the record. Compute
``canonical_json(record)`` (sorted keys, no whitespace, ASCII, see
:func:`canonical_json`) and check
``hmac.new(key, (record["prev_hash"] + canonical).encode(), sha256).hexdigest()
== hash``, then that ``prev_hash`` equals the previous record's ``hash`` in the
same chain. For a checkpoint, remove ``type`` and ``signature`` and check the
HMAC of ``canonical_json`` of the rest. :func:`record_hash` and
:func:`checkpoint_signature` do exactly this.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from eventsvc.clock import rfc3339, truncate_to_ms, utc_now
from eventsvc.domain import RequestContext
from eventsvc.metrics import count_audit_failures
from eventsvc.schema import ensure_collection

log = logging.getLogger(__name__)

Document = dict[str, Any]
Outcome = Literal["success", "denied", "failure"]
ProblemKind = Literal["modified", "deleted", "inserted", "reordered", "truncated", "bad-checkpoint"]

AUDIT = "audit"
AUDIT_CHECKPOINTS = "audit_checkpoints"
FORMAT = 1
GENESIS_HASH = "0" * 64
MIN_KEY_BYTES = 32

ACTIONS = frozenset(
    {
        "event.create",
        "event.stop",
        "event.delete",
        "token.create",
        "token.revoke",
        "request.denied",
    }
)
OUTCOMES = frozenset({"success", "denied", "failure"})
_ACTOR = re.compile(
    r"^(anonymous"
    r"|token:[A-Za-z0-9_.-]{1,128}( cert:[^\x00-\x1f]{1,380})?"
    r"|cert:[^\x00-\x1f]{1,512})$"
)
_WRITER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEX64 = r"^[0-9a-f]{64}$"


def _optional_string(max_length: int) -> Document:
    return {"bsonType": ["string", "null"], "maxLength": max_length}


# The database refuses anything that is not shaped like an audit record,
# whichever code path (or compromised instance) tries to insert it.
AUDIT_VALIDATOR: Document = {
    "$jsonSchema": {
        "bsonType": "object",
        "required": [
            "format",
            "chain",
            "sequence",
            "prev_hash",
            "hash",
            "time",
            "actor",
            "action",
            "target",
            "outcome",
            "before_digest",
            "after_digest",
            "client_address",
            "request_id",
            "trace_id",
            "detail",
        ],
        "additionalProperties": False,
        "properties": {
            "_id": {"bsonType": "objectId"},
            "format": {"bsonType": "int", "enum": [FORMAT]},
            "chain": {"bsonType": "string", "minLength": 3, "maxLength": 100},
            "sequence": {"bsonType": ["int", "long"], "minimum": 1},
            "prev_hash": {"bsonType": "string", "pattern": _HEX64},
            "hash": {"bsonType": "string", "pattern": _HEX64},
            "time": {"bsonType": "date"},
            "actor": {"bsonType": "string", "minLength": 1, "maxLength": 520},
            "action": {"bsonType": "string", "enum": sorted(ACTIONS)},
            "target": _optional_string(200),
            "outcome": {"bsonType": "string", "enum": sorted(OUTCOMES)},
            "before_digest": {"bsonType": ["string", "null"], "pattern": _HEX64},
            "after_digest": {"bsonType": ["string", "null"], "pattern": _HEX64},
            "client_address": _optional_string(100),
            "request_id": _optional_string(200),
            "trace_id": _optional_string(200),
            "detail": _optional_string(500),
        },
    }
}

CHECKPOINTS_VALIDATOR: Document = {
    "$jsonSchema": {
        "bsonType": "object",
        "required": ["format", "writer_id", "heads", "time", "signature"],
        "additionalProperties": False,
        "properties": {
            "_id": {"bsonType": "objectId"},
            "format": {"bsonType": "int", "enum": [FORMAT]},
            "writer_id": {"bsonType": "string", "pattern": _WRITER_ID.pattern},
            "heads": {"bsonType": "object"},
            "time": {"bsonType": "date"},
            "signature": {"bsonType": "string", "pattern": _HEX64},
        },
    }
}

AUDIT_INDEXES = [
    # One place per record in a chain; also the order verify() reads chains in.
    IndexModel([("chain", ASCENDING), ("sequence", ASCENDING)], name="chain_sequence", unique=True),
    # export(): a time range, in a stable order.
    IndexModel(
        [("time", ASCENDING), ("chain", ASCENDING), ("sequence", ASCENDING)],
        name="time_chain_sequence",
    ),
]
CHECKPOINT_INDEXES = [IndexModel([("time", ASCENDING)], name="time")]


# --- canonical encoding ------------------------------------------------------------------


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(value: Mapping[str, Any]) -> str:
    """The one byte-exact encoding that is hashed: sorted keys, no whitespace, ASCII only.

    Datetimes become RFC 3339 UTC strings with milliseconds; NaN/Infinity and
    types without an obvious JSON form are refused rather than guessed.
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=_json_default,
    )


def state_digest(state: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of a state's canonical JSON: proves what it was without storing it."""
    if state is None:
        return None
    return hashlib.sha256(canonical_json(state).encode("ascii")).hexdigest()


def record_hash(record: Mapping[str, Any], hmac_key: bytes) -> str:
    """``HMAC-SHA-256(key, prev_hash || canonical record)``; ``record`` is the wire form.

    Fields ``hash`` and ``type`` (added by :func:`export`) are not part of the record.
    """
    fields = {name: value for name, value in record.items() if name not in ("hash", "type")}
    message = str(fields["prev_hash"]) + canonical_json(fields)
    return hmac.new(hmac_key, message.encode("ascii"), hashlib.sha256).hexdigest()


_UNSIGNED = ("signature", "type")


def checkpoint_signature(checkpoint: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA-256 of a checkpoint's canonical JSON (without ``signature`` and ``type``)."""
    fields = {
        name: value for name, value in checkpoint.items() if name not in ("signature", "type")
    }
    return hmac.new(key, canonical_json(fields).encode("ascii"), hashlib.sha256).hexdigest()


def _wire(document: Mapping[str, Any]) -> Document:
    """A stored document as JSON-ready fields: no ``_id``, time as RFC 3339."""
    wire = {name: value for name, value in document.items() if name != "_id"}
    if isinstance(wire.get("time"), datetime):  # anything else fails its hash check later
        wire["time"] = rfc3339(wire["time"])
    return wire


def _check_key(key: bytes, name: str) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{name} must be at least {MIN_KEY_BYTES} random bytes")


# --- writing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """What the caller knows about one audited action.

    ``actor`` names who acted, never with a secret: ``token:<token id>``,
    ``cert:<subject>`` or ``anonymous``. ``before``/``after`` are hashed, not
    stored: the trail proves which state a change saw and left without
    copying event data into it.
    """

    actor: str
    action: str
    target: str | None
    outcome: Outcome
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    client_address: str | None
    request_id: str | None
    trace_id: str | None
    detail: str | None = None

    def __post_init__(self) -> None:
        if not _ACTOR.match(self.actor):
            raise ValueError(
                "actor must be 'anonymous', 'token:<token id>[ cert:<subject>]' or 'cert:<subject>'"
            )
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")


def _entry(
    context: RequestContext,
    action: str,
    target: str,
    outcome: Outcome,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """An entry for what ``context`` (who, from where, which request) did."""
    return AuditEntry(
        actor=context.actor,
        action=action,
        target=target,
        outcome=outcome,
        before=before,
        after=after,
        client_address=context.client_address,
        request_id=context.request_id,
        trace_id=context.trace_id,
        detail=detail,
    )


@dataclass(frozen=True)
class AuditRecord:
    """One stored record, as it is hashed (plus its ``hash``)."""

    chain: str
    sequence: int
    prev_hash: str
    hash: str
    time: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    before_digest: str | None
    after_digest: str | None
    client_address: str | None
    request_id: str | None
    trace_id: str | None
    detail: str | None

    def fields(self) -> Document:
        """The hashed fields in wire form (what :func:`record_hash` takes)."""
        return {
            "format": FORMAT,
            "chain": self.chain,
            "sequence": self.sequence,
            "prev_hash": self.prev_hash,
            "time": rfc3339(self.time),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "before_digest": self.before_digest,
            "after_digest": self.after_digest,
            "client_address": self.client_address,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "detail": self.detail,
        }

    def document(self) -> Document:
        """The MongoDB document: wire fields, ``time`` as a BSON date, and ``hash``."""
        return {**self.fields(), "time": self.time, "hash": self.hash}


@dataclass(frozen=True)
class ChainHead:
    """Where a chain ends: the last record's sequence and hash (0 and genesis when empty)."""

    sequence: int
    hash: str


GENESIS = ChainHead(0, GENESIS_HASH)


@dataclass(frozen=True)
class _ChainState:
    """A thread's chain: the last durable head, and the last record not yet known durable."""

    committed: ChainHead
    pending: ChainHead | None = None


class AuditLog:
    """Appends records to this writer's chains and signs their heads.

    One instance per process. Thread-safe: each thread writes its own chain;
    a short lock only guards the table of heads that checkpoints sign, and is
    never held during I/O.
    """

    def __init__(
        self,
        database: Database[Document],
        hmac_key: bytes,
        *,
        writer_id: str | None = None,
        checkpoint_key: bytes | None = None,
        checkpoint_every: int = 100,
    ) -> None:
        _check_key(hmac_key, "hmac_key")
        if checkpoint_key is not None:
            _check_key(checkpoint_key, "checkpoint_key")
        if writer_id is not None and not _WRITER_ID.match(writer_id):
            raise ValueError("writer_id must be 1-64 letters, digits, '_' or '-'")
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self._database = database
        self._hmac_key = hmac_key
        self._checkpoint_key = checkpoint_key or hmac_key
        self._checkpoint_every = checkpoint_every
        self.writer_id = writer_id or uuid.uuid4().hex
        self._chain_numbers = itertools.count(1)
        self._local = threading.local()
        self._heads_lock = threading.Lock()
        self._chains: dict[str, _ChainState] = {}
        self._appends_since_checkpoint = 0

    def __repr__(self) -> str:
        return f"AuditLog(writer_id={self.writer_id!r})"

    # --- lifecycle ------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create both collections with validators and indexes; safe to run every start."""
        for name, validator, indexes in (
            (AUDIT, AUDIT_VALIDATOR, AUDIT_INDEXES),
            (AUDIT_CHECKPOINTS, CHECKPOINTS_VALIDATOR, CHECKPOINT_INDEXES),
        ):
            ensure_collection(self._database, name, validator)
            self._database[name].create_indexes(indexes)
        log.info("audit schema ready (validators and indexes on %s, %s)", AUDIT, AUDIT_CHECKPOINTS)

    def _collection(self, name: str) -> Collection[Document]:
        # "local" reads on the primary see a transaction as soon as its commit
        # returns; inside a transaction pymongo uses the transaction's own.
        return self._database.get_collection(
            name,
            write_concern=WriteConcern(w="majority", j=True),
            read_concern=ReadConcern("local"),
        )

    # --- appending ------------------------------------------------------
    def append(self, entry: AuditEntry, *, session: ClientSession | None = None) -> AuditRecord:
        """Write ``entry`` as the next record of this thread's chain and return it.

        Pass the caller's ``session`` to write inside its transaction: the
        record then commits or aborts with the change it describes. Without a
        transaction the record is durable (majority, journaled) on return.
        Errors propagate; the chain stays continuable either way.
        """
        chain = self._thread_chain()
        in_transaction = session is not None and session.in_transaction
        head = self._tip(chain, session if in_transaction else None)
        record = self._next_record(chain, head, entry)
        # Until we know the insert is durable, the next append must check.
        self._set_state(chain, _ChainState(head, pending=_head_of(record)))
        try:
            self._collection(AUDIT).insert_one(record.document(), session=session)
        except DuplicateKeyError:
            # Only if someone else wrote into this chain; the pending state
            # makes the next append continue from what is really stored.
            log.error("audit chain %s: sequence %d already taken", chain, record.sequence)
            raise
        if not in_transaction:
            self._set_state(chain, _ChainState(_head_of(record)))
        self._count_and_maybe_checkpoint()
        return record

    def append_change(
        self,
        context: RequestContext,
        action: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        *,
        session: ClientSession,
    ) -> AuditRecord:
        """Record a successful change inside its transaction (target: the document's _id).

        A failure is counted (eventsvc_audit_write_failures_total) and raised,
        so the transaction, and with it the change, is aborted.
        """
        target = str((after or before or {}).get("_id"))
        entry = _entry(context, action, target, "success", before=before, after=after)
        with count_audit_failures():
            return self.append(entry, session=session)

    def append_denied(self, context: RequestContext, target: str, detail: str) -> AuditRecord:
        """Record a refused request (401, 403, 429); failures are counted and raised."""
        entry = _entry(context, "request.denied", target[:200], "denied", detail=detail[:200])
        with count_audit_failures():
            return self.append(entry)

    def _thread_chain(self) -> str:
        """This thread's chain id, created on its first append.

        Numbered, not named after the thread: thread idents are reused after a
        thread ends, and a reused id would collide with the old chain.
        """
        chain: str | None = getattr(self._local, "chain", None)
        if chain is None:
            chain = f"{self.writer_id}/{next(self._chain_numbers)}"
            self._local.chain = chain
            self._set_state(chain, _ChainState(GENESIS))
        return chain

    def _tip(self, chain: str, session: ClientSession | None) -> ChainHead:
        """The head to chain from; settles a pending head against the database."""
        state = self._chains[chain]
        if state.pending is None:
            return state.committed
        head = self._stored_tip(chain, session)
        if session is None:  # outside a transaction the answer is final
            self._set_state(chain, _ChainState(head))
        return head

    def _stored_tip(self, chain: str, session: ClientSession | None) -> ChainHead:
        last = self._collection(AUDIT).find_one(
            {"chain": chain},
            projection={"_id": False, "sequence": True, "hash": True},
            sort=[("sequence", DESCENDING)],
            session=session,
        )
        return GENESIS if last is None else ChainHead(int(last["sequence"]), str(last["hash"]))

    def _next_record(self, chain: str, head: ChainHead, entry: AuditEntry) -> AuditRecord:
        unsigned = AuditRecord(
            chain=chain,
            sequence=head.sequence + 1,
            prev_hash=head.hash,
            hash="",
            time=truncate_to_ms(utc_now()),
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            outcome=entry.outcome,
            before_digest=state_digest(entry.before),
            after_digest=state_digest(entry.after),
            client_address=entry.client_address,
            request_id=entry.request_id,
            trace_id=entry.trace_id,
            detail=entry.detail,
        )
        return replace(unsigned, hash=record_hash(unsigned.fields(), self._hmac_key))

    def _set_state(self, chain: str, state: _ChainState) -> None:
        with self._heads_lock:
            self._chains[chain] = state

    def _count_and_maybe_checkpoint(self) -> None:
        with self._heads_lock:
            self._appends_since_checkpoint += 1
            due = self._appends_since_checkpoint >= self._checkpoint_every
            if due:
                self._appends_since_checkpoint = 0
        if due:
            try:
                self.checkpoint()
            except PyMongoError:
                # The record itself is written; a missed checkpoint only
                # delays truncation evidence until the next one.
                log.warning("audit checkpoint failed; retrying after more records", exc_info=True)

    # --- checkpoints ----------------------------------------------------
    def checkpoint(self) -> None:
        """Sign and store the durable head of every chain of this writer.

        A pending head (its transaction's outcome not yet seen by its thread)
        is included only if that exact record is in the database; otherwise
        the last head known durable is signed. Heads are taken from memory,
        never from the database, so a checkpoint cannot bless a cut-off chain.
        """
        with self._heads_lock:
            states = dict(self._chains)
        heads: dict[str, Document] = {}
        for chain, state in sorted(states.items()):
            head = state.committed
            if state.pending is not None and self._is_stored(chain, state.pending):
                head = state.pending
            if head.sequence > 0:
                heads[chain] = {"sequence": head.sequence, "hash": head.hash}
        if not heads:
            return
        now = truncate_to_ms(utc_now())
        fields: Document = {
            "format": FORMAT,
            "writer_id": self.writer_id,
            "heads": heads,
            "time": rfc3339(now),
        }
        signature = checkpoint_signature(fields, self._checkpoint_key)
        self._collection(AUDIT_CHECKPOINTS).insert_one(
            {**fields, "time": now, "signature": signature}
        )
        log.info("audit checkpoint of %d chain(s) for writer %s", len(heads), self.writer_id)

    def _is_stored(self, chain: str, head: ChainHead) -> bool:
        found = self._collection(AUDIT).find_one(
            {"chain": chain, "sequence": head.sequence, "hash": head.hash},
            projection={"_id": True},
        )
        return found is not None


def _head_of(record: AuditRecord) -> ChainHead:
    return ChainHead(record.sequence, record.hash)


# --- verifying ---------------------------------------------------------------------------


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

    @property
    def ok(self) -> bool:
        return self.bad_checkpoints == 0 and all(chain.ok for chain in self.chains)

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


Problem = tuple[ProblemKind, int, str]
ChainLoader = Callable[[], list[Document]]


def verify(
    database: Database[Document], hmac_key: bytes, *, checkpoint_key: bytes | None = None
) -> VerifyReport:
    """Check every chain in ``database`` and report the first broken link of each.

    Reads records in ``(chain, sequence)`` order through the unique index,
    one at a time, so memory does not grow with the trail; a broken chain
    is re-read once to tell which kind of tampering broke it.
    """
    _check_key(hmac_key, "hmac_key")
    checkpoints = _read_checkpoints(database, checkpoint_key or hmac_key)
    reports: list[ChainReport] = []
    cursor = database[AUDIT].find({}, sort=[("chain", ASCENDING), ("sequence", ASCENDING)])
    for chain, documents in itertools.groupby(cursor, key=lambda document: document["chain"]):
        reports.append(
            verify_chain(
                str(chain),
                (_wire(document) for document in documents),
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
    )


def _read_checkpoints(database: Database[Document], key: bytes) -> Checkpoints:
    stored = database[AUDIT_CHECKPOINTS].find({}, sort=[("time", ASCENDING)])
    return read_checkpoints((_wire(document) for document in stored), key)


def read_checkpoints(checkpoints: Iterable[Mapping[str, Any]], key: bytes) -> Checkpoints:
    """Read checkpoints (from the database or an export): signed heads and forged claims."""
    found = Checkpoints(heads={}, forged={})
    for checkpoint in checkpoints:
        found.checked += 1
        heads = checkpoint.get("heads")
        if not isinstance(heads, dict) or not _signature_ok(checkpoint, key):
            found.bad += 1
            for chain, head in (heads or {}).items():
                found.forged[str(chain)] = _claimed_sequence(head)
            continue
        for chain, head in heads.items():
            signed = ChainHead(int(head["sequence"]), str(head["hash"]))
            if chain not in found.heads or signed.sequence > found.heads[chain].sequence:
                found.heads[chain] = signed
    return found


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


def _signature_ok(checkpoint: Mapping[str, Any], key: bytes) -> bool:
    """True when the checkpoint's signature is the HMAC of its content under ``key``."""
    try:
        expected = checkpoint_signature(checkpoint, key)
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(expected, str(checkpoint.get("signature", "")))


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
            sort=[("sequence", ASCENDING)],
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
    if not isinstance(prev_hash, str) or not re.match(_HEX64, prev_hash):
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


# --- export ------------------------------------------------------------------------------


def export(
    database: Database[Document], start: datetime | None, end: datetime | None
) -> Iterator[Document]:
    """Records with ``start <= time < end`` (oldest first), then the checkpoints in that range.

    Each dict is JSON-ready and carries its proof: records their ``chain``,
    ``sequence``, ``prev_hash`` and ``hash``; checkpoints their ``heads`` and
    ``signature``. See the module docstring for offline verification.
    """
    time_range: Document = {}
    if start is not None:
        time_range["$gte"] = start
    if end is not None:
        time_range["$lt"] = end
    query: Document = {"time": time_range} if time_range else {}
    records = database[AUDIT].find(
        query, sort=[("time", ASCENDING), ("chain", ASCENDING), ("sequence", ASCENDING)]
    )
    for document in records:
        yield {"type": "record", **_wire(document)}
    for document in database[AUDIT_CHECKPOINTS].find(query, sort=[("time", ASCENDING)]):
        yield {"type": "checkpoint", **_wire(document)}


# --- benchmark ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkResult:
    """Audit throughput measured against a real MongoDB (and without it, for hashing)."""

    appends: int
    threads: int
    appends_per_second: float
    hashes_per_second: float
    verified_per_second: float

    def describe(self) -> str:
        return (
            f"audit: {self.appends} appends on {self.threads} thread(s): "
            f"{self.appends_per_second:,.0f} records/s durable (w:majority, j:true); "
            f"{self.hashes_per_second:,.0f} records/s hashing only; "
            f"verify {self.verified_per_second:,.0f} records/s "
            "(Crosby & Wallach 2009: 1,750 events/s on one core)"
        )


def benchmark(database: Database[Document], n: int = 2000, *, threads: int = 1) -> BenchmarkResult:
    """Append ``n`` records from ``threads`` threads into ``database``, then verify them all.

    Use a scratch database: verify() checks every chain in it, and the
    records written here stay there.
    """
    key = secrets.token_bytes(MIN_KEY_BYTES)
    audit = AuditLog(database, key)
    audit.ensure_schema()
    entry = AuditEntry(
        actor="token:bench",
        action="event.create",
        target="0" * 24,
        outcome="success",
        before=None,
        after={"name": "bench", "start_event": datetime.now(UTC), "attributes": {"k": "v"}},
        client_address="127.0.0.1",
        request_id="bench",
        trace_id=None,
    )
    hashing_started = time.perf_counter()
    for _ in range(n):
        audit._next_record("bench/0", GENESIS, entry)
    hashing_seconds = time.perf_counter() - hashing_started

    def worker(count: int) -> None:
        for _ in range(count):
            audit.append(entry)

    per_thread = [n // threads + (1 if index < n % threads else 0) for index in range(threads)]
    workers = [threading.Thread(target=worker, args=(count,)) for count in per_thread]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    append_seconds = time.perf_counter() - started
    audit.checkpoint()
    verify_started = time.perf_counter()
    report = verify(database, key)
    verify_seconds = time.perf_counter() - verify_started
    return BenchmarkResult(
        appends=n,
        threads=threads,
        appends_per_second=n / append_seconds,
        hashes_per_second=n / hashing_seconds,
        verified_per_second=report.records_checked / verify_seconds,
    )


def start_checkpoints(audit: AuditLog, interval_seconds: float) -> threading.Thread:
    """Sign this writer's chain heads every ``interval_seconds`` in a daemon thread.

    A tail cut after the last checkpoint goes unnoticed, so the interval is
    the window an attacker with database access has; failures are logged
    and retried at the next tick, never fatal to the service.
    """

    def run() -> None:
        while True:
            time.sleep(interval_seconds)
            try:
                audit.checkpoint()
            except Exception:
                log.exception("audit checkpoint failed; retrying in %.0f s", interval_seconds)

    thread = threading.Thread(target=run, name="audit-checkpoints", daemon=True)
    thread.start()
    return thread

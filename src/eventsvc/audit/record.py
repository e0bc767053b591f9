"""What an audit record is: its fields, its canonical form and its hashes.

Records form chains: each record carries ``sequence`` (1, 2, 3...),
``prev_hash`` (the ``hash`` of the record before it; 64 zeros for the first
one, a public genesis value that commits to nothing secret) and
``hash = HMAC-SHA-256(key, prev_hash || canonical record)``. The key comes
from Vault; it is never stored or logged, so whoever can write to MongoDB
but does not hold the key cannot forge, alter, remove or reorder a record
without verification noticing.

Nothing here touches MongoDB. The writer (:mod:`eventsvc.audit.log`), the
verifier (:mod:`eventsvc.audit.verify`) and the export all build on these
definitions, so what is hashed when writing is exactly what is checked.

**Offline verification by an auditor.** An export yields JSON-ready dicts
(``"type": "record"`` or ``"checkpoint"``). For a record, remove ``type`` and
``hash``; the rest is the record. Compute ``canonical_json(record)`` (sorted
keys, no whitespace, ASCII, see :func:`canonical_json`) and check
``hmac.new(key, (record["prev_hash"] + canonical).encode(), sha256).hexdigest()
== hash``, then that ``prev_hash`` equals the previous record's ``hash`` in the
same chain. For a checkpoint, remove ``type`` and ``signature`` and check the
HMAC of ``canonical_json`` of the rest. :func:`record_hash` and
:func:`checkpoint_signature` do exactly this.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from eventsvc.clock import rfc3339

Document = dict[str, Any]
Outcome = Literal["success", "denied", "failure"]

# The collections records and checkpoints live in. Named here, not in
# schema.py, so the verifier can read them without importing pymongo.
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
WRITER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEX64 = r"^[0-9a-f]{64}$"

# Fields an export adds next to a record's or checkpoint's content; not hashed.
_NOT_HASHED = ("hash", "type")
_NOT_SIGNED = ("signature", "type")


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

    Fields ``hash`` and ``type`` (added by the export) are not part of the record.
    """
    fields = {name: value for name, value in record.items() if name not in _NOT_HASHED}
    message = str(fields["prev_hash"]) + canonical_json(fields)
    return hmac.new(hmac_key, message.encode("ascii"), hashlib.sha256).hexdigest()


def checkpoint_signature(checkpoint: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA-256 of a checkpoint's canonical JSON (without ``signature`` and ``type``)."""
    fields = {name: value for name, value in checkpoint.items() if name not in _NOT_SIGNED}
    return hmac.new(key, canonical_json(fields).encode("ascii"), hashlib.sha256).hexdigest()


def wire_form(document: Mapping[str, Any]) -> Document:
    """A stored document as JSON-ready fields: no ``_id``, time as RFC 3339."""
    wire = {name: value for name, value in document.items() if name != "_id"}
    if isinstance(wire.get("time"), datetime):  # anything else fails its hash check later
        wire["time"] = rfc3339(wire["time"])
    return wire


def check_key(key: bytes, name: str) -> None:
    """Refuse a key too short to make forging a hash impractical."""
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{name} must be at least {MIN_KEY_BYTES} random bytes")


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """What the caller knows about one audited action.

    ``actor`` names who acted, never with a secret: ``token:<token id>``,
    ``cert:<subject>`` or ``anonymous``. ``before``/``after`` are hashed, not
    stored: the trail proves which state a change saw and left without
    copying event data into it.

    ``request_id`` is the server's; ``client_request_id`` and
    ``client_traceparent`` are what the caller claimed, labelled as such.
    ``count`` is how many denied requests one record stands for (see
    :mod:`eventsvc.audit.denials`). These three are written only when set,
    so every other record keeps the exact form (and hash) it always had.
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
    client_request_id: str | None = None
    client_traceparent: str | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if not _ACTOR.match(self.actor):
            raise ValueError(
                "actor must be 'anonymous', 'token:<token id>[ cert:<subject>]' or 'cert:<subject>'"
            )
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")


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
    client_request_id: str | None = None
    client_traceparent: str | None = None
    count: int | None = None

    def fields(self) -> Document:
        """The hashed fields in wire form (what :func:`record_hash` takes)."""
        optional = {
            "client_request_id": self.client_request_id,
            "client_traceparent": self.client_traceparent,
            "count": self.count,
        }
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
        } | {name: value for name, value in optional.items() if value is not None}

    def document(self) -> Document:
        """The MongoDB document: wire fields, ``time`` as a BSON date, and ``hash``."""
        return {**self.fields(), "time": self.time, "hash": self.hash}


@dataclass(frozen=True)
class ChainHead:
    """Where a chain ends: the last record's sequence and hash (0 and genesis when empty)."""

    sequence: int
    hash: str


GENESIS = ChainHead(0, GENESIS_HASH)


def next_record(
    chain: str, head: ChainHead, entry: AuditEntry, time: datetime, hmac_key: bytes
) -> AuditRecord:
    """The record for ``entry`` that follows ``head`` in ``chain``, with its hash.

    Pure (no I/O): the writer decides where the chain ends and when the
    record is durable. ``time`` should be at millisecond precision, which is
    all the stored BSON date keeps.
    """
    unsigned = AuditRecord(
        chain=chain,
        sequence=head.sequence + 1,
        prev_hash=head.hash,
        hash="",
        time=time,
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
        client_request_id=entry.client_request_id,
        client_traceparent=entry.client_traceparent,
        count=entry.count,
    )
    return replace(unsigned, hash=record_hash(unsigned.fields(), hmac_key))

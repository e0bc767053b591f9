"""The canonical encoding that audit hashes are computed over: stable, strict, key-bound."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from pymongo import MongoClient

from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import (
    AuditEntry,
    canonical_json,
    checkpoint_hash,
    checkpoint_message,
    record_hash,
    state_digest,
)
from eventsvc.audit.signing import (
    LocalCheckpointSigner,
    load_public_key,
    public_key_pem,
    public_keys_from_transit,
    signature_ok,
)
from eventsvc.clock import rfc3339
from support import CHECKPOINT_KEYS, CHECKPOINT_SIGNER

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
OTHER_SIGNER = LocalCheckpointSigner.generate()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
states = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def a_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "format": 1,
        "chain": "writer/1",
        "sequence": 3,
        "prev_hash": "a" * 64,
        "time": "2024-05-01T12:00:00.123Z",
        "actor": "token:tok_1",
        "action": "event.stop",
        "target": "665f00000000000000000000",
        "outcome": "success",
        "before_digest": "b" * 64,
        "after_digest": "c" * 64,
        "client_address": "192.0.2.1",
        "request_id": "req-1",
        "trace_id": None,
        "detail": None,
    }
    record.update(changes)
    return record


@given(states)
def test_canonical_json_ignores_key_order(state: dict[str, Any]) -> None:
    reversed_state = dict(reversed(list(state.items())))
    assert canonical_json(state) == canonical_json(reversed_state)
    assert json.loads(canonical_json(state)) == state


@given(states)
def test_canonical_json_is_compact_ascii(state: dict[str, Any]) -> None:
    encoded = canonical_json(state)
    assert encoded.isascii()
    assert encoded == json.dumps(state, sort_keys=True, separators=(",", ":"))


def test_datetimes_are_rfc3339_utc_milliseconds() -> None:
    paris = timezone(timedelta(hours=2))
    moment = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=paris)
    assert rfc3339(moment) == "2024-05-01T12:00:00.123Z"
    assert rfc3339(datetime(2024, 5, 1, 12, 0, 0, 123000)) == "2024-05-01T12:00:00.123Z"
    assert canonical_json({"at": moment}) == '{"at":"2024-05-01T12:00:00.123Z"}'


@pytest.mark.parametrize("value", [math.nan, math.inf, object(), b"bytes", {1, 2}])
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_json({"value": value})


def test_state_digest() -> None:
    assert state_digest(None) is None
    digest = state_digest({"name": "a", "n": 1})
    assert digest == state_digest({"n": 1, "name": "a"})
    assert digest != state_digest({"name": "b", "n": 1})
    assert digest is not None
    assert len(digest) == 64


@pytest.mark.parametrize("field", sorted(a_record()))
def test_every_field_is_covered_by_the_hash(field: str) -> None:
    original = a_record()
    changed = a_record(**{field: "changed" if original[field] != "changed" else "other"})
    assert record_hash(changed, KEY) != record_hash(original, KEY)


def test_record_hash_needs_the_key_and_ignores_export_fields() -> None:
    record = a_record()
    assert record_hash(record, KEY) != record_hash(record, OTHER_KEY)
    exported = {**record, "type": "record", "hash": record_hash(record, KEY)}
    assert record_hash(exported, KEY) == exported["hash"]


def test_checkpoint_signature_is_ed25519_over_the_content_only() -> None:
    checkpoint = {"format": 2, "writer_id": "w", "heads": {}, "time": "2024-05-01T12:00:00.000Z"}
    signature = CHECKPOINT_SIGNER.sign(checkpoint_message(checkpoint))
    stored = {**checkpoint, "type": "checkpoint", "hash": checkpoint_hash(checkpoint)}
    assert checkpoint_message({**stored, "signature": signature}) == checkpoint_message(checkpoint)
    assert signature_ok(checkpoint_message(stored), signature, CHECKPOINT_KEYS)
    altered = checkpoint_message({**checkpoint, "writer_id": "x"})
    assert not signature_ok(altered, signature, CHECKPOINT_KEYS)
    assert not signature_ok(checkpoint_message(checkpoint), signature, OTHER_SIGNER.public_keys())


def test_the_audit_hmac_key_cannot_make_a_checkpoint_signature() -> None:
    """Whoever verifies records holds the HMAC key; it must not sign checkpoints."""
    message = checkpoint_message({"format": 2, "writer_id": "w", "heads": {}})
    as_hmac = hmac.new(KEY, message, hashlib.sha256).hexdigest()
    for forged in (as_hmac, f"vault:v1:{base64.b64encode(bytes.fromhex(as_hmac)).decode()}"):
        assert not signature_ok(message, forged, CHECKPOINT_KEYS)


def test_public_keys_load_from_pem_base64_and_transit() -> None:
    pem = public_key_pem(CHECKPOINT_KEYS)
    message = b"m"
    signature = CHECKPOINT_SIGNER.sign(message)
    assert signature_ok(message, signature, load_public_key(pem))
    raw = CHECKPOINT_KEYS[1].public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert signature_ok(message, signature, load_public_key(base64.b64encode(raw).decode()))
    transit = {"type": "ed25519", "keys": {"1": {"public_key": base64.b64encode(raw).decode()}}}
    assert signature_ok(message, signature, public_keys_from_transit(transit))
    with pytest.raises(ValueError, match="not ed25519"):
        public_keys_from_transit({**transit, "type": "rsa-2048"})
    with pytest.raises(ValueError, match="not a PEM or base64"):
        load_public_key("not a key")


def entry(**changes: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "actor": "anonymous",
        "action": "request.denied",
        "target": None,
        "outcome": "denied",
        "before": None,
        "after": None,
        "client_address": None,
        "request_id": None,
        "trace_id": None,
    }
    fields.update(changes)
    return AuditEntry(**fields)


@pytest.mark.parametrize("actor", ["anonymous", "token:tok_1", "cert:CN=client,OU=apps,O=example"])
def test_actor_forms(actor: str) -> None:
    assert entry(actor=actor).actor == actor


@pytest.mark.parametrize(
    "changes",
    [
        {"actor": "Bearer abc.def"},
        {"actor": "token:has spaces"},
        {"actor": "cert:line\nbreak"},
        {"action": "event.update"},
        {"outcome": "ok"},
    ],
)
def test_entries_outside_the_vocabulary_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"actor|action|outcome"):
        entry(**changes)


def test_audit_log_refuses_weak_keys_and_odd_writer_ids() -> None:
    client: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:1", connect=False)
    database = client["unused"]
    try:
        with pytest.raises(ValueError, match="hmac_key"):
            AuditLog(database, b"short", CHECKPOINT_SIGNER)
        with pytest.raises(ValueError, match="writer_id"):
            AuditLog(database, KEY, CHECKPOINT_SIGNER, writer_id="a/b")
        audit = AuditLog(database, KEY, CHECKPOINT_SIGNER)
        assert KEY.decode() not in repr(audit)
        assert len(audit.writer_id) == 32
    finally:
        client.close()

"""The MongoDB side of the audit collections: validators and indexes.

The database refuses anything that is not shaped like an audit record or a
checkpoint, whichever code path (or compromised instance) tries to insert
it. The shapes are those :mod:`eventsvc.audit.record` defines.
"""

from __future__ import annotations

import logging

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

from eventsvc.audit.record import (
    ACTIONS,
    AUDIT,
    AUDIT_CHECKPOINTS,
    FORMAT,
    HEX64,
    OUTCOMES,
    WRITER_ID,
    Document,
)
from eventsvc.schema import ensure_collection

log = logging.getLogger(__name__)


def _optional_string(max_length: int) -> Document:
    return {"bsonType": ["string", "null"], "maxLength": max_length}


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
            "prev_hash": {"bsonType": "string", "pattern": HEX64},
            "hash": {"bsonType": "string", "pattern": HEX64},
            "time": {"bsonType": "date"},
            "actor": {"bsonType": "string", "minLength": 1, "maxLength": 520},
            "action": {"bsonType": "string", "enum": sorted(ACTIONS)},
            "target": _optional_string(200),
            "outcome": {"bsonType": "string", "enum": sorted(OUTCOMES)},
            "before_digest": {"bsonType": ["string", "null"], "pattern": HEX64},
            "after_digest": {"bsonType": ["string", "null"], "pattern": HEX64},
            "client_address": _optional_string(100),
            "request_id": _optional_string(200),
            "trace_id": _optional_string(200),
            "detail": _optional_string(500),
            # Optional: present only when set (see record.AuditEntry).
            "client_request_id": {"bsonType": "string", "maxLength": 64},
            "client_traceparent": {"bsonType": "string", "maxLength": 55},
            "count": {"bsonType": ["int", "long"], "minimum": 1},
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
            "writer_id": {"bsonType": "string", "pattern": WRITER_ID.pattern},
            "heads": {"bsonType": "object"},
            "time": {"bsonType": "date"},
            "signature": {"bsonType": "string", "pattern": HEX64},
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


def ensure_schema(database: Database[Document]) -> None:
    """Create both collections with validators and indexes; safe to run every start."""
    for name, validator, indexes in (
        (AUDIT, AUDIT_VALIDATOR, AUDIT_INDEXES),
        (AUDIT_CHECKPOINTS, CHECKPOINTS_VALIDATOR, CHECKPOINT_INDEXES),
    ):
        ensure_collection(database, name, validator)
        database[name].create_indexes(indexes)
    log.info("audit schema ready (validators and indexes on %s, %s)", AUDIT, AUDIT_CHECKPOINTS)

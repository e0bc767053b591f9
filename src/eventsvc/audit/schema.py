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
    CHECKPOINT_FORMAT,
    CHECKPOINT_REASONS,
    FORMAT,
    HEX64,
    OUTCOMES,
    WRITER_ID,
    Document,
)
from eventsvc.schema import CollectionSchema, ensure

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
        "required": [
            "format",
            "writer_id",
            "number",
            "prev_checkpoint",
            "reason",
            "heads",
            "time",
            "hash",
            "signature",
        ],
        "additionalProperties": False,
        "properties": {
            "_id": {"bsonType": "objectId"},
            "format": {"bsonType": "int", "enum": [CHECKPOINT_FORMAT]},
            "writer_id": {"bsonType": "string", "pattern": WRITER_ID.pattern},
            "number": {"bsonType": ["int", "long"], "minimum": 1},
            "prev_checkpoint": {"bsonType": "string", "pattern": HEX64},
            "reason": {"bsonType": "string", "enum": sorted(CHECKPOINT_REASONS)},
            "heads": {"bsonType": "object"},
            "time": {"bsonType": "date"},
            "hash": {"bsonType": "string", "pattern": HEX64},
            "signature": {"bsonType": "string", "maxLength": 200},
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
CHECKPOINT_INDEXES = [
    IndexModel([("time", ASCENDING)], name="time"),
    # One place per checkpoint in a writer's checkpoint chain.
    IndexModel(
        [("writer_id", ASCENDING), ("number", ASCENDING)], name="writer_number", unique=True
    ),
]

AUDIT_SCHEMAS = (
    CollectionSchema(AUDIT, AUDIT_VALIDATOR, tuple(AUDIT_INDEXES)),
    CollectionSchema(AUDIT_CHECKPOINTS, CHECKPOINTS_VALIDATOR, tuple(CHECKPOINT_INDEXES)),
)
"""What :mod:`eventsvc.dbschema` creates (migration) and checks (app start)."""


def ensure_schema(database: Database[Document]) -> None:
    """Migration: create both collections with validators and indexes (idempotent)."""
    ensure(database, AUDIT_SCHEMAS)
    log.info("audit schema ready (validators and indexes on %s, %s)", AUDIT, AUDIT_CHECKPOINTS)

"""The whole MongoDB schema of this version: every collection, validator and index, in one list.

Each owner defines its part next to its queries (:mod:`eventsvc.store`,
:mod:`eventsvc.tokens`, :mod:`eventsvc.audit.schema`,
:mod:`eventsvc.ratelimit`). This module puts them together, so the migration (:func:`ensure_schema`)
and the app's start-up check (:func:`check_schema`) read the same list and
cannot drift apart.
"""

from __future__ import annotations

from pymongo.database import Database

from eventsvc.audit.schema import AUDIT_SCHEMAS
from eventsvc.ratelimit import RATE_LIMIT_SCHEMA
from eventsvc.schema import CollectionSchema, Document, check, ensure
from eventsvc.store import STORE_SCHEMAS
from eventsvc.tokens import TOKENS_SCHEMA

SCHEMAS: tuple[CollectionSchema, ...] = (
    *STORE_SCHEMAS,
    TOKENS_SCHEMA,
    *AUDIT_SCHEMAS,
    RATE_LIMIT_SCHEMA,
)
COLLECTIONS: tuple[str, ...] = tuple(schema.name for schema in SCHEMAS)


def ensure_schema(database: Database[Document]) -> None:
    """Migration identity only: create every collection, validator and index (idempotent)."""
    ensure(database, SCHEMAS)


def check_schema(database: Database[Document]) -> None:
    """Any identity that may list collections and indexes: raise SchemaMismatch on a difference."""
    check(database, SCHEMAS)

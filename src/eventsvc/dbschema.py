"""The whole MongoDB schema of this version: every collection, validator and index, in one list.

Each owner defines its part next to its queries (:mod:`eventsvc.store`,
:mod:`eventsvc.tokens`, :mod:`eventsvc.audit.schema`); the rate limiter's
collections are defined here, because :mod:`eventsvc.ratelimit` imports the
Flask side of authentication, which imports the services. This module puts
them together, so the migration (:func:`ensure_schema`)
and the app's start-up check (:func:`check_schema`) read the same list and
cannot drift apart.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

from eventsvc.audit.schema import AUDIT_SCHEMAS
from eventsvc.schema import CollectionSchema, Document, check, ensure
from eventsvc.store import STORE_SCHEMAS
from eventsvc.tokens import TOKENS_SCHEMA

COUNTERS = "rate_limit_counters"
WINDOWS = "rate_limit_windows"
# The TTL index flask-limiter's storage (limits) would create at first use, as it names it;
# the app's role cannot create it, so the migration does (see eventsvc.ratelimit).
_EXPIRE_AT = IndexModel([("expireAt", ASCENDING)], name="expireAt_1", expireAfterSeconds=0)
RATE_LIMIT_SCHEMAS = (
    CollectionSchema(COUNTERS, None, (_EXPIRE_AT,)),
    CollectionSchema(WINDOWS, None, (_EXPIRE_AT,)),
)

SCHEMAS: tuple[CollectionSchema, ...] = (
    *STORE_SCHEMAS,
    TOKENS_SCHEMA,
    *AUDIT_SCHEMAS,
    *RATE_LIMIT_SCHEMAS,
)
COLLECTIONS: tuple[str, ...] = tuple(schema.name for schema in SCHEMAS)


def ensure_schema(database: Database[Document]) -> None:
    """Migration identity only: create every collection, validator and index (idempotent)."""
    ensure(database, SCHEMAS)


def check_schema(database: Database[Document]) -> None:
    """Any identity that may list collections and indexes: raise SchemaMismatch on a difference."""
    check(database, SCHEMAS)

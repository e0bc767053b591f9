"""Collections, validators and indexes: created by the migration identity, checked by the app.

Two identities touch the schema (see DESIGN.md, "Two MongoDB identities"):

- the **migration** identity runs :func:`ensure` (``eventsvc migrate``, the
  dev stack's preparation step): it creates collections, sets validators and
  builds indexes. Only it holds ``createCollection``/``createIndex``/``collMod``.
- the **running app** runs :func:`check` at start: it only lists collections
  and indexes and refuses to serve (:class:`SchemaMismatch`) when they are not
  exactly what this version expects. Its role cannot change them, so a
  mismatch means a missed migration or someone else's hand, such as a TTL
  index added to ``audit`` to make MongoDB erase the audit trail.

One gap MongoDB leaves: a role with ``insert`` on a collection may also
``create`` it while it does not exist (never with indexes, never a change to
an existing one). So a collection missing at start could be recreated bare by
the app; :func:`check` refuses exactly that state.

Creation tolerates a race: two migrations on a fresh database can both try
to create a collection; the loser gets ``CollectionInvalid`` from pymongo's
own check or NamespaceExists (code 48) from the server, and both mean
"already there".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import IndexModel
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, OperationFailure

Document = dict[str, Any]

NAMESPACE_EXISTS = 48
DEFAULT_INDEX = "_id_"
# Index fields MongoDB adds or we never set: ignored when comparing definitions.
_IGNORED_INDEX_FIELDS = frozenset({"v", "ns"})


class SchemaMismatch(RuntimeError):
    """The database's collections, validators or indexes are not what the app expects."""


@dataclass(frozen=True)
class CollectionSchema:
    """One collection as this version expects it: its validator and its indexes (besides _id)."""

    name: str
    validator: Document | None = None
    indexes: tuple[IndexModel, ...] = field(default=())


def ensure_collection(
    database: Database[Document], name: str, validator: Document | None = None
) -> None:
    """Create ``name`` with ``validator``, or update the validator if it exists (migration)."""
    try:
        if validator is None:
            database.create_collection(name)
        else:
            database.create_collection(name, validator=validator)
        return
    except CollectionInvalid:
        pass
    except OperationFailure as error:
        if error.code != NAMESPACE_EXISTS:
            raise
    if validator is not None:
        database.command(
            "collMod",
            name,
            validator=validator,
            validationLevel="strict",
            validationAction="error",
        )


def ensure(database: Database[Document], schemas: Iterable[CollectionSchema]) -> None:
    """Migration: create every collection, validator and index in ``schemas`` (idempotent).

    An index whose name exists with other options makes MongoDB refuse
    (IndexOptionsConflict): changing an index is a deliberate drop by an
    administrator, never a side effect of starting something.
    """
    for schema in schemas:
        ensure_collection(database, schema.name, schema.validator)
        if schema.indexes:
            database[schema.name].create_indexes(list(schema.indexes))


def check(database: Database[Document], schemas: Iterable[CollectionSchema]) -> None:
    """Read-only: raise :class:`SchemaMismatch` unless ``database`` matches ``schemas`` exactly.

    Exactly: each collection exists, is not capped, has the expected
    validator with strict validation, and has the expected indexes (same
    keys, same options) and no other. An extra index is refused too, not
    only a TTL one: any index can be turned into a TTL index later.
    """
    problems: list[str] = []
    existing = {info["name"]: info.get("options", {}) for info in database.list_collections()}
    for schema in schemas:
        if schema.name not in existing:
            problems.append(f"{schema.name}: collection missing")
            continue
        problems += _collection_problems(schema, existing[schema.name])
        problems += _index_problems(schema, database[schema.name].list_indexes())
    if problems:
        raise SchemaMismatch(
            "the MongoDB schema is not what this version expects (run `eventsvc migrate` "
            "with the migration credential, or find out who changed it): " + "; ".join(problems)
        )


def index_definition(index: Mapping[str, Any]) -> Document:
    """An index as compared: its key as a list of pairs and every option but ``v``/``ns``."""
    definition = {k: v for k, v in index.items() if k not in _IGNORED_INDEX_FIELDS}
    definition["key"] = list(dict(index["key"]).items())
    return definition


def _collection_problems(schema: CollectionSchema, options: Document) -> list[str]:
    problems: list[str] = []
    if options.get("capped"):
        problems.append(f"{schema.name}: capped")
    validator = options.get("validator") or None
    if validator != schema.validator:
        problems.append(f"{schema.name}: validator differs")
    if schema.validator is not None:
        level = options.get("validationLevel", "strict")
        action = options.get("validationAction", "error")
        if (level, action) != ("strict", "error"):
            problems.append(f"{schema.name}: validation is {level}/{action}, not strict/error")
    return problems


def _index_problems(schema: CollectionSchema, found: Iterable[Mapping[str, Any]]) -> list[str]:
    expected = {
        str(model.document["name"]): index_definition(model.document) for model in schema.indexes
    }
    actual = {str(index["name"]): index_definition(index) for index in found}
    actual.pop(DEFAULT_INDEX, None)
    problems = [f"{schema.name}: index {name} missing" for name in expected if name not in actual]
    for name, definition in actual.items():
        if name not in expected:
            problems.append(f"{schema.name}: unexpected index {name} {_options(definition)}")
        elif definition != expected[name]:
            problems.append(f"{schema.name}: index {name} differs {_options(definition)}")
    return problems


def _options(definition: Document) -> str:
    """An index's key and options, short and on one line, for the refusal message."""
    shown = {k: v for k, v in definition.items() if k != "name"}
    return str(shown).replace("\n", " ")[:200]

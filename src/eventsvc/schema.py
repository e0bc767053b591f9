"""Create a collection (and its validator) once, whoever gets there first.

Every worker of every instance runs ``ensure_schema`` at boot. On a fresh
database two of them can race to create the same collection; the loser gets
``CollectionInvalid`` from pymongo's own check or NamespaceExists (code 48)
from the server, and both mean "already there".
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database
from pymongo.errors import CollectionInvalid, OperationFailure

NAMESPACE_EXISTS = 48


def ensure_collection(
    database: Database[dict[str, Any]], name: str, validator: dict[str, Any] | None = None
) -> None:
    """Create ``name`` with ``validator``, or update the validator if it exists."""
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
        database.command("collMod", name, validator=validator)

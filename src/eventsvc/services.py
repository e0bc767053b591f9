"""The one composition root: the stores the app runs on, wired the same way everywhere.

The server's workers, the OpenAPI export and the dev stack's migration step
all call :func:`build_services`; nobody else puts an EventStore, a
TokenStore and an AuditLog together. Creating the schema is a separate step
(:meth:`Services.ensure_schema`), so whoever holds the migration identity
decides when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from eventsvc.audit.log import AuditLog
from eventsvc.audit.signing import CheckpointAnchor, CheckpointSigner
from eventsvc.store import Document, EventStore
from eventsvc.tokens import TokenStore


@dataclass(frozen=True)
class Services:
    """What the routes use: the events, the tokens and the audit trail, on one MongoDB client.

    Both stores write their audit records through the one ``audit`` writer,
    so every change of this process lands in this writer's chains.
    """

    events: EventStore
    tokens: TokenStore
    audit: AuditLog

    def ensure_schema(self) -> None:
        """Create or check every collection, validator and index; safe to run every start.

        Raises StoreUnavailable (or PyMongoError) when MongoDB refuses.
        """
        self.events.ensure_schema()  # the audit collections too
        self.tokens.ensure_schema()

    def close(self) -> None:
        """Close the MongoDB client the services share."""
        self.events.close()


def build_services(
    database: Database[Document],
    *,
    audit_key: bytes,
    token_pepper: bytes,
    checkpoint_signer: CheckpointSigner,
    checkpoint_anchor: CheckpointAnchor | None = None,
) -> Services:
    """The stores on ``database`` (and its client), keyed with the secrets from Vault.

    Opens no connection by itself (pymongo connects on first use) and
    creates nothing: call :meth:`Services.ensure_schema` for that.
    """
    audit = AuditLog(database, audit_key, checkpoint_signer, checkpoint_anchor=checkpoint_anchor)
    return Services(
        events=EventStore(database.client, database.name, audit),
        tokens=TokenStore(database, token_pepper, audit),
        audit=audit,
    )

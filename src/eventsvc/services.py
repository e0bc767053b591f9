"""The one composition root: the stores the app runs on, wired the same way everywhere.

The server's workers, the OpenAPI export and the dev stack's migration step
all call :func:`build_services`; nobody else puts an EventStore, a
TokenStore and an AuditLog together. The schema is not the app's to change:
the migration identity creates it (:func:`eventsvc.dbschema.ensure_schema`,
``eventsvc migrate``), and the app only checks it at start
(:meth:`Services.check_schema`) and refuses to serve when it differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from eventsvc.audit.log import AuditLog
from eventsvc.audit.signing import CheckpointAnchor, CheckpointSigner
from eventsvc.dbschema import check_schema
from eventsvc.store import Document, EventStore, unavailable_on_connection_errors
from eventsvc.tokencache import TokenCache
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

    def check_schema(self) -> None:
        """Read-only: raise SchemaMismatch if collections, validators or indexes differ.

        Raises StoreUnavailable when MongoDB cannot be reached. The app's role
        may list collections and indexes but not change them, so this never
        "repairs" anything: a difference is either a missed migration or
        tampering, and either way the operator must look.
        """
        unavailable_on_connection_errors(lambda: check_schema(self.events.database))

    def close(self) -> None:
        """Stop the token watch, then close the MongoDB client the services share."""
        self.tokens.stop_watching()
        self.events.close()


def build_services(
    database: Database[Document],
    *,
    audit_key: bytes,
    token_pepper: bytes,
    checkpoint_signer: CheckpointSigner,
    checkpoint_anchor: CheckpointAnchor | None = None,
    token_cache: TokenCache | None = None,
) -> Services:
    """The stores on ``database`` (and its client), keyed with the secrets from Vault.

    Opens no connection by itself (pymongo connects on first use) and
    creates nothing (that is the migration's job, :mod:`eventsvc.dbschema`).
    ``token_cache`` is used once the worker calls ``tokens.watch_revocations()``.
    """
    audit = AuditLog(database, audit_key, checkpoint_signer, checkpoint_anchor=checkpoint_anchor)
    return Services(
        events=EventStore(database.client, database.name, audit),
        tokens=TokenStore(database, token_pepper, audit, token_cache),
        audit=audit,
    )

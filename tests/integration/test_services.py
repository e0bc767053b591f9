"""The composition root on a fresh database, as the dev stack's migration step uses it."""

from __future__ import annotations

from datetime import timedelta

from devstack.mongod import RunningMongod
from eventsvc.domain import SYSTEM_CONTEXT
from eventsvc.services import build_services
from support import CHECKPOINT_SIGNER

AUDIT_KEY = b"a" * 32
PEPPER = b"p" * 32


def test_build_then_ensure_schema_twice_then_serve(mongod: RunningMongod) -> None:
    with mongod.admin_client() as admin:
        database = admin["services_fresh"]
        try:
            services = build_services(
                database,
                audit_key=AUDIT_KEY,
                token_pepper=PEPPER,
                checkpoint_signer=CHECKPOINT_SIGNER,
            )
            assert database.list_collection_names() == [], "building creates nothing"
            services.ensure_schema()
            services.ensure_schema()  # every start runs it: idempotent
            names = set(database.list_collection_names())
            assert {"events", "idempotency_keys", "api_tokens"} <= names
            assert "validator" in database["events"].options()
            assert services.events.audit is services.audit  # one writer for both stores
            minted = services.tokens.create(
                "migration", ["events:read"], timedelta(hours=1), SYSTEM_CONTEXT
            )
            assert services.tokens.authenticate(minted.token).owner == "migration"
        finally:
            admin.drop_database(database.name)

"""The composition root on a fresh database: the migration creates, the app only checks."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from devstack.mongod import RunningMongod
from eventsvc.dbschema import COLLECTIONS, ensure_schema
from eventsvc.domain import SYSTEM_CONTEXT
from eventsvc.schema import SchemaMismatch
from eventsvc.services import build_services
from support import CHECKPOINT_SIGNER

AUDIT_KEY = b"a" * 32
PEPPER = b"p" * 32


def test_migrate_twice_then_check_then_serve(mongod: RunningMongod) -> None:
    name = "services_fresh"
    password = secrets.token_urlsafe(24)
    mongod.create_migration_user_scram("services-migration", password, name)
    with mongod.admin_client() as admin:
        database = admin[name]
        try:
            services = build_services(
                database,
                audit_key=AUDIT_KEY,
                token_pepper=PEPPER,
                checkpoint_signer=CHECKPOINT_SIGNER,
            )
            assert database.list_collection_names() == [], "building creates nothing"
            with pytest.raises(SchemaMismatch, match="events: collection missing"):
                services.check_schema()
            assert database.list_collection_names() == [], "checking creates nothing"
            with mongod.user_client("services-migration", password, name) as migration:
                ensure_schema(migration[name])
                ensure_schema(migration[name])  # every deployment runs it: idempotent
            services.check_schema()
            assert set(database.list_collection_names()) == set(COLLECTIONS)
            assert "validator" in database["events"].options()
            assert services.events.audit is services.audit  # one writer for both stores
            minted = services.tokens.create(
                "migration", ["events:read"], timedelta(hours=1), SYSTEM_CONTEXT
            )
            assert services.tokens.authenticate(minted.token).owner == "migration"
        finally:
            admin.drop_database(name)
            admin[name].command("dropUser", "services-migration")

"""The app's MongoDB role cannot change the schema; the app refuses a schema that changed.

Issue #15: with ``createIndex``/``collMod`` on its database the app's
credential could erase the audit trail without ``remove`` (a TTL index on
``audit.time``), or switch its validator off. Now the migration identity
(role ``eventsvcMigration``) creates the schema, the app's role
(``eventsvcApp``) only lists it, and the app checks it at start.

The attacks run with the app's real SCRAM credential, the one every other
test's store uses (the X.509 certificate from Vault PKI faces the same list in
test_vault_mongo.py). The start-up tests run ``python -m eventsvc.server``.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from pymongo.errors import OperationFailure
from schema_attacks import ATTACK_PARAMS, UNAUTHORIZED, Attack, assert_refused

from devstack.mongod import RunningMongod
from eventsvc.audit.record import AUDIT, AUDIT_CHECKPOINTS
from eventsvc.dbschema import check_schema, ensure_schema
from eventsvc.schema import SchemaMismatch
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from support import CHECKPOINT_SEED, coverage_env, free_port

Db = Database[dict[str, Any]]


@pytest.fixture
def app_db(store: EventStore, settings: Settings) -> Db:
    """The database through the app's own client (SCRAM user, role eventsvcApp)."""
    return store.client[settings.mongodb_database]


def test_the_attacks_use_the_app_credential_which_can_read_and_check(app_db: Db) -> None:
    """Positive control: the same client reads and checks, so a refusal below is the role's."""
    status = app_db.client.admin.command("connectionStatus")["authInfo"]
    assert status["authenticatedUserRoles"] == [{"role": "eventsvcApp", "db": app_db.name}]
    app_db[AUDIT].find_one({}, projection={"_id": 1})  # find is allowed
    check_schema(app_db)  # listing collections and indexes is allowed


@pytest.mark.parametrize("attack", ATTACK_PARAMS)
def test_app_credential_cannot_change_metadata_or_audit_records(app_db: Db, attack: Attack) -> None:
    assert_refused(app_db, attack)
    check_schema(app_db)  # and nothing changed


def test_migration_identity_reads_and_deletes_no_data(
    mongod: RunningMongod, migration_password: Any, settings: Settings, migrated: None
) -> None:
    """The migration role builds the schema and nothing else: no data, nothing destructive."""
    name = settings.mongodb_database
    with mongod.user_client(
        "eventsvc-test-migration", migration_password.get_secret_value(), name
    ) as client:
        database = client[name]
        refused = []
        for attempt in (
            lambda: database[AUDIT].find_one({}),
            lambda: database[AUDIT].insert_one({}),
            lambda: database[AUDIT].delete_many({}),
            lambda: database.command("drop", AUDIT),
            lambda: database.command("dropIndexes", AUDIT, index="*"),
            lambda: database.command("dropDatabase"),
        ):
            with pytest.raises(OperationFailure) as error:
                attempt()
            refused.append(error.value.code)
        assert refused == [UNAUTHORIZED] * len(refused)


# --- the start-up check ---------------------------------------------------------------


@pytest.fixture
def scratch(mongod: RunningMongod) -> Iterator[tuple[Db, str, str]]:
    """A migrated scratch database with its own app user: (admin's view, username, password)."""
    name = f"schema_check_{secrets.token_hex(4)}"
    username, password = f"app-{name}", secrets.token_urlsafe(24)
    mongod.create_app_user_scram(username, password, database=name)
    with mongod.admin_client() as admin:
        ensure_schema(admin[name])
        try:
            yield admin[name], username, password
        finally:
            admin.drop_database(name)  # drops its users and roles too


Tampering = Callable[[Db], Any]
TAMPERINGS: list[tuple[str, Tampering, str]] = [
    (
        "TTL index on audit.time",
        lambda db: db[AUDIT].create_index("time", expireAfterSeconds=0, name="erase"),
        "audit: unexpected index erase",
    ),
    (
        "audit_checkpoints index turned TTL",
        lambda db: db.command(
            "collMod", AUDIT_CHECKPOINTS, index={"name": "time", "expireAfterSeconds": 0}
        ),
        "audit_checkpoints: index time differs",
    ),
    (
        "audit validator off",
        lambda db: db.command("collMod", AUDIT, validator={}, validationLevel="off"),
        "audit: validator differs",
    ),
    (
        "events validation warn only",
        lambda db: db.command("collMod", "events", validationAction="warn"),
        "events: validation is strict/warn",
    ),
    (
        "audit index dropped",
        lambda db: db[AUDIT].drop_index("chain_sequence"),
        "audit: index chain_sequence missing",
    ),
    (
        "extra plain index on events",
        lambda db: db["events"].create_index("name", name="extra"),
        "events: unexpected index extra",
    ),
    (
        "rate-limit TTL index dropped",
        lambda db: db["rate_limit_counters"].drop_index("expireAt_1"),
        "rate_limit_counters: index expireAt_1 missing",
    ),
    ("collection dropped", lambda db: db["api_tokens"].drop(), "api_tokens: collection missing"),
    (
        "audit_checkpoints made capped",
        lambda db: db.command("convertToCapped", AUDIT_CHECKPOINTS, size=1 << 20),
        "audit_checkpoints: capped",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "problem"), [pytest.param(t, p, id=i) for i, t, p in TAMPERINGS]
)
def test_check_refuses_a_changed_schema(
    scratch: tuple[Db, str, str], tamper: Tampering, problem: str
) -> None:
    admin_db, _, _ = scratch
    check_schema(admin_db)
    tamper(admin_db)
    with pytest.raises(SchemaMismatch, match=problem):
        check_schema(admin_db)


def _start_server(
    settings: Settings, database: str, username: str, password: str, home: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        **coverage_env(),
        "EVENTSVC_PROFILE": "test",
        "EVENTSVC_BIND": f"127.0.0.1:{free_port()}",
        "EVENTSVC_WORKERS": "1",
        "EVENTSVC_MONGODB_HOSTS": settings.mongodb_hosts,
        "EVENTSVC_MONGODB_REPLICA_SET": settings.mongodb_replica_set or "",
        "EVENTSVC_MONGODB_DATABASE": database,
        "EVENTSVC_MONGODB_TLS": "false",
        "EVENTSVC_MONGODB_AUTH_MODE": "scram",
        "EVENTSVC_MONGODB_USERNAME": username,
        "EVENTSVC_MONGODB_PASSWORD": password,
        "EVENTSVC_TOKEN_PEPPER": secrets.token_urlsafe(32),
        "EVENTSVC_AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        "EVENTSVC_AUDIT_CHECKPOINT_SEED": base64.urlsafe_b64encode(CHECKPOINT_SEED).decode(),
    }
    return subprocess.run(
        [sys.executable, "-m", "eventsvc.server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        pytest.param(TAMPERINGS[0][1], TAMPERINGS[0][2], id="extra TTL index on audit"),
        pytest.param(TAMPERINGS[4][1], TAMPERINGS[4][2], id="missing index on audit"),
    ],
)
def test_server_refuses_to_start_on_a_changed_schema(
    scratch: tuple[Db, str, str],
    settings: Settings,
    tmp_path: Path,
    tamper: Tampering,
    problem: str,
) -> None:
    admin_db, username, password = scratch
    tamper(admin_db)
    result = _start_server(settings, admin_db.name, username, password, tmp_path)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eventsvc: schema error: ")
    assert problem in lines[0]
    assert "eventsvc migrate" in lines[0]
    assert password not in result.stderr

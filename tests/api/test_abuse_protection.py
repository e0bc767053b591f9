"""Rate limits shared by all instances, CORS closed by default, size limits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask.testing import FlaskClient
from pydantic import SecretStr

from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.ratelimit import COUNTERS
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokens import TokenStore
from support import CHECKPOINT_SIGNER, CommandLog, app_user_client, problem_of


def instance(
    settings: Settings, store: EventStore, tokens: TokenStore, **changes: object
) -> FlaskClient:
    audit = AuditLog(store.database, b"k" * 32, CHECKPOINT_SIGNER)
    services = Services(events=store, tokens=tokens, audit=audit)
    app = create_app(settings.model_copy(update=changes), services)
    return app.test_client()


def fresh_address() -> str:
    """An address of its own: counters live in the database all tests share."""
    groups = uuid.uuid4().hex[:16]
    return "2001:db8::" + ":".join(groups[i : i + 4] for i in range(0, 16, 4))


@contextmanager
def listening_store(
    settings: Settings, password: SecretStr, pepper: SecretStr, listener: CommandLog
) -> Iterator[tuple[EventStore, TokenStore]]:
    """The app's stores on a second client of the same app user, whose commands are seen."""
    client = app_user_client(settings, password, listener)
    audit = AuditLog(client[settings.mongodb_database], b"k" * 32, CHECKPOINT_SIGNER)
    try:
        yield (
            EventStore(client, settings.mongodb_database, audit),
            TokenStore(
                client[settings.mongodb_database], pepper.get_secret_value().encode(), audit
            ),
        )
    finally:
        client.close()


def test_per_token_limit_is_shared_by_two_instances(
    settings: Settings,
    store: EventStore,
    tokens: TokenStore,
    make_token: Callable[..., str],
    clean_db: None,
) -> None:
    first = instance(settings, store, tokens, rate_limit_per_token="4/day")
    second = instance(settings, store, tokens, rate_limit_per_token="4/day")
    headers = {"Authorization": f"Bearer {make_token('events:read')}"}
    responses = [
        client.get("/api/v1/events", headers=headers) for client in (first, second, first, second)
    ]
    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    assert [response.headers["X-RateLimit-Remaining"] for response in responses] == [
        "3",
        "2",
        "1",
        "0",
    ]
    assert {response.headers["X-RateLimit-Limit"] for response in responses} == {"4"}
    limited = second.get("/api/v1/events", headers=headers)
    assert limited.status_code == 429
    assert problem_of(limited)["status"] == 429
    reset_at = int(limited.headers["X-RateLimit-Reset"])
    retry_after = int(limited.headers["Retry-After"])
    assert 0 < retry_after <= 86400
    assert abs(reset_at - time.time() - retry_after) <= 2
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    other_token = {"Authorization": f"Bearer {make_token('events:read')}"}
    assert first.get("/api/v1/events", headers=other_token).status_code == 200


def test_per_address_limit_applies_without_a_token(
    settings: Settings, store: EventStore, tokens: TokenStore, clean_db: None
) -> None:
    client = instance(settings, store, tokens, rate_limit_per_address="3/day")
    environ = {"REMOTE_ADDR": fresh_address()}
    responses = [client.get("/api/v1/events", environ_base=environ) for _ in range(4)]
    assert [response.status_code for response in responses] == [401, 401, 401, 429]
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert "Retry-After" in responses[-1].headers
    health = client.get("/healthz", environ_base=environ)
    assert health.status_code == 200  # probes are not counted
    assert "X-RateLimit-Limit" not in health.headers


def test_guessed_tokens_count_against_the_address(
    settings: Settings,
    store: EventStore,
    tokens: TokenStore,
    make_token: Callable[..., str],
    clean_db: None,
) -> None:
    """Well-formed but wrong tokens, each a new one: the address runs out, not a token bucket."""
    client = instance(settings, store, tokens, rate_limit_per_address="3/day")
    environ = {"REMOTE_ADDR": fresh_address()}
    real = make_token("events:read")
    token_id = real.split("_")[1]
    statuses = [
        client.get(
            "/api/v1/events",
            environ_base=environ,
            headers={"Authorization": f"Bearer evt_{token_id}_{'A' * 42}{n}"},
        ).status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # The real token still works from that address: it has its own (per-token) count.
    assert (
        client.get(
            "/api/v1/events", environ_base=environ, headers={"Authorization": f"Bearer {real}"}
        ).status_code
        == 200
    )


def test_authenticated_requests_do_not_use_up_the_address(
    settings: Settings,
    store: EventStore,
    tokens: TokenStore,
    make_token: Callable[..., str],
    clean_db: None,
) -> None:
    """Per-address limits of authenticated traffic are the gateway's: the app counts the token."""
    client = instance(settings, store, tokens, rate_limit_per_address="2/day")
    environ = {"REMOTE_ADDR": fresh_address()}
    headers = {"Authorization": f"Bearer {make_token('events:read')}"}
    statuses = [
        client.get("/api/v1/events", environ_base=environ, headers=headers).status_code
        for _ in range(5)
    ]
    assert statuses == [200] * 5
    anonymous = [client.get("/api/v1/events", environ_base=environ).status_code for _ in range(3)]
    assert anonymous == [401, 401, 429]


def test_the_docs_and_unknown_paths_count_against_the_address(
    settings: Settings, store: EventStore, tokens: TokenStore, clean_db: None
) -> None:
    client = instance(settings, store, tokens, rate_limit_per_address="2/day")
    environ = {"REMOTE_ADDR": fresh_address()}
    statuses = [
        client.get("/openapi.json", environ_base=environ).status_code,
        client.get("/no/such/path", environ_base=environ).status_code,
        client.get("/openapi.json", environ_base=environ).status_code,
    ]
    assert statuses == [200, 404, 429]


def test_a_request_costs_one_counter_round_trip(
    settings: Settings,
    app_password: SecretStr,
    token_pepper: SecretStr,
    make_token: Callable[..., str],
    clean_db: None,
) -> None:
    """Counted and its headers filled with one findAndModify, for a token and for an address."""
    listener = CommandLog()
    with listening_store(settings, app_password, token_pepper, listener) as (
        listened_store,
        listened_tokens,
    ):
        client = instance(settings, listened_store, listened_tokens)
        headers = {"Authorization": f"Bearer {make_token('events:read')}"}
        for request_headers in (headers, {}):
            listener.commands.clear()
            response = client.get("/api/v1/events", headers=request_headers)
            assert "X-RateLimit-Remaining" in response.headers
            assert listener.on(COUNTERS) == ["findAndModify"]


def test_cors_is_closed_by_default(client: FlaskClient) -> None:
    response = client.options(
        "/api/v1/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    response = client.get("/api/v1/events", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allow_list(
    settings: Settings, store: EventStore, tokens: TokenStore, clean_db: None
) -> None:
    client = instance(settings, store, tokens, cors_origins=["https://app.example"])
    allowed = client.options(
        "/api/v1/events",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    denied = client.options(
        "/api/v1/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in denied.headers


def test_forwarded_for_is_ignored_without_trusted_proxies(
    settings: Settings, store: EventStore, tokens: TokenStore, clean_db: None
) -> None:
    client = instance(settings, store, tokens, rate_limit_per_address="2/day")
    environ = {"REMOTE_ADDR": fresh_address()}
    statuses = [
        client.get(
            "/api/v1/events", environ_base=environ, headers={"X-Forwarded-For": f"203.0.113.{n}"}
        ).status_code
        for n in range(3)
    ]
    assert statuses[-1] == 429  # spoofed addresses did not buy new buckets

"""Rate limits shared by all instances, CORS closed by default, size limits."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokens import TokenStore
from support import CHECKPOINT_SIGNER, problem_of


def instance(
    settings: Settings, store: EventStore, tokens: TokenStore, **changes: object
) -> FlaskClient:
    audit = AuditLog(store.database, b"k" * 32, CHECKPOINT_SIGNER)
    services = Services(events=store, tokens=tokens, audit=audit)
    app = create_app(settings.model_copy(update=changes), services)
    return app.test_client()


def test_per_token_limit_is_shared_by_two_instances(
    settings: Settings,
    store: EventStore,
    tokens: TokenStore,
    make_token: Callable[..., str],
    clean_db: None,
) -> None:
    first = instance(settings, store, tokens, rate_limit_per_token="4/minute")
    second = instance(settings, store, tokens, rate_limit_per_token="4/minute")
    headers = {"Authorization": f"Bearer {make_token('events:read')}"}
    statuses = [
        client.get("/api/v1/events", headers=headers).status_code
        for client in (first, second, first, second)
    ]
    assert statuses == [200, 200, 200, 200]
    limited = second.get("/api/v1/events", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert problem_of(limited)["status"] == 429
    other_token = {"Authorization": f"Bearer {make_token('events:read')}"}
    assert first.get("/api/v1/events", headers=other_token).status_code == 200


def test_per_address_limit_applies_without_a_token(
    settings: Settings, store: EventStore, tokens: TokenStore, clean_db: None
) -> None:
    client = instance(settings, store, tokens, rate_limit_per_address="3/minute")
    # A distinct address per test run: counters live in the shared database.
    environ = {"REMOTE_ADDR": "192.0.2.77"}
    statuses = [client.get("/api/v1/events", environ_base=environ).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert client.get("/healthz", environ_base=environ).status_code == 200  # probes exempt


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
    client = instance(settings, store, tokens, rate_limit_per_address="2/minute")
    environ = {"REMOTE_ADDR": "192.0.2.78"}
    statuses = [
        client.get(
            "/api/v1/events", environ_base=environ, headers={"X-Forwarded-For": f"203.0.113.{n}"}
        ).status_code
        for n in range(3)
    ]
    assert statuses[-1] == 429  # spoofed addresses did not buy new buckets

"""Every denial (401, 403, 429) is audit evidence, and a flood of them stays bounded.

Records are read back through the API (``GET /api/v1/audit``), the way an
auditor sees them, from the real audit collection in the test mongod.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from eventsvc.api.services import denial_recorder
from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokens import TokenStore, parse_token_id

EVENTS = "/api/v1/events"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def denials(client: FlaskClient) -> list[dict[str, Any]]:
    """Every request.denied record in the trail, as the export (JSON lines) shows it."""
    response = client.get("/api/v1/audit")
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    return [line for line in lines if line.get("action") == "request.denied"]


def fresh_address() -> str:
    """A client address of its own: rate-limit counters live in the shared database."""
    groups = uuid.uuid4().hex[:16]
    return "2001:db8::" + ":".join(groups[i : i + 4] for i in range(0, 16, 4))


def test_401_is_audited_with_our_request_id_and_the_callers_ids_labelled(
    anonymous_client: FlaskClient, client: FlaskClient
) -> None:
    address = fresh_address()
    response = anonymous_client.post(
        EVENTS,
        json={"name": "x"},
        headers={"X-Request-Id": "caller-chosen-0001", "traceparent": TRACEPARENT},
        environ_base={"REMOTE_ADDR": address},
    )
    assert response.status_code == 401
    ours = response.headers["X-Request-Id"]
    assert ours != "caller-chosen-0001"
    (record,) = [r for r in denials(client) if r["request_id"] == ours]
    assert record["actor"] == "anonymous"
    assert record["client_address"] == address
    assert record["target"] == "POST /api/v1/events"
    assert record["detail"].startswith("401 ")
    assert record["outcome"] == "denied"
    assert record["count"] == 1
    assert record["client_request_id"] == "caller-chosen-0001"
    assert record["client_traceparent"] == TRACEPARENT


def test_403_is_audited_with_the_token_as_actor(
    anonymous_client: FlaskClient, client: FlaskClient, make_token: Callable[..., str]
) -> None:
    read_only = make_token("events:read")
    response = anonymous_client.post(
        EVENTS, json={"name": "x"}, headers={"Authorization": f"Bearer {read_only}"}
    )
    assert response.status_code == 403
    (record,) = [r for r in denials(client) if r["request_id"] == response.headers["X-Request-Id"]]
    assert record["actor"] == f"token:{parse_token_id(read_only)}"
    assert record["detail"].startswith("403 insufficient_scope")
    assert record["target"] == "POST /api/v1/events"
    assert "client_request_id" not in record  # none was sent: nothing is claimed


def test_429_is_audited(
    settings: Settings,
    store: EventStore,
    tokens: TokenStore,
    audit_log: AuditLog,
    client: FlaskClient,
) -> None:
    limited = create_app(
        settings.model_copy(update={"rate_limit_per_address": "1/day"}),
        Services(events=store, tokens=tokens, audit=audit_log),
    ).test_client()
    address = fresh_address()
    assert limited.get(EVENTS, environ_base={"REMOTE_ADDR": address}).status_code == 401
    response = limited.get(EVENTS, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 429
    (record,) = [r for r in denials(client) if r["request_id"] == response.headers["X-Request-Id"]]
    assert record["detail"].startswith("429 ")
    assert record["client_address"] == address
    assert record["target"] == "GET /api/v1/events"


def test_a_flood_of_denials_writes_a_bounded_number_of_records(
    app: Flask, anonymous_client: FlaskClient, client: FlaskClient
) -> None:
    """500 refused requests from one address: at most 2 records per reason, counts sum to 500.

    The default per-address limit (300/minute) turns part of the flood into
    429s, so two reasons (401 and 429) appear: at most 4 records in all.
    """
    address = fresh_address()
    before = len(denials(client))
    statuses = {
        anonymous_client.get(EVENTS, environ_base={"REMOTE_ADDR": address}).status_code
        for _ in range(500)
    }
    assert statuses <= {401, 429}
    denial_recorder(app).flush(everything=True)  # what the worker does when it exits
    records = [r for r in denials(client) if r["client_address"] == address]
    assert len(denials(client)) - before <= 4
    assert len(records) <= 4
    assert sum(record["count"] for record in records) == 500

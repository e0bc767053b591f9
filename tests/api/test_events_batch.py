"""POST /api/v1/events:batch: up to 100 creates in one transaction, each audited and replayable."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from eventsvc.app import create_app
from eventsvc.audit.log import AuditLog
from eventsvc.cli.audit_file import verify_export
from eventsvc.domain import MAX_BATCH_EVENTS
from eventsvc.services import Services
from eventsvc.settings import Settings
from eventsvc.store import EventStore
from eventsvc.tokens import TokenStore
from support import APP_DATABASE, CHECKPOINT_KEYS, CHECKPOINT_SIGNER, problem_of

BATCH = "/api/v1/events:batch"


def post(client: FlaskClient, *events: dict[str, Any], **headers: str) -> Any:
    return client.post(BATCH, json={"events": list(events)}, headers=headers)


def event_ids(client: FlaskClient) -> set[str]:
    response = client.get("/api/v1/events?limit=500")
    assert response.status_code == 200
    return {item["id"] for item in response.get_json()["items"]}


def audited_targets(client: FlaskClient, action: str = "event.create") -> list[str]:
    lines = client.get("/api/v1/audit").get_data(as_text=True).splitlines()
    return [
        record["target"]
        for record in map(json.loads, lines)
        if record.get("action") == action and "target" in record
    ]


def test_a_batch_creates_every_event_in_order_with_an_audit_record_each(
    client: FlaskClient,
) -> None:
    response = post(
        client,
        {"name": "first", "start_event": "2026-01-31T12:00:00Z", "attributes": {"site": "a"}},
        {"name": "second"},
        {"name": "third", "idempotency_key": "batch-key-0001"},
    )
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["status"] for item in items] == [201, 201, 201]
    assert [item["event"]["name"] for item in items] == ["first", "second", "third"]
    assert items[0]["event"]["start_event"] == "2026-01-31T12:00:00.000Z"
    assert items[0]["event"]["attributes"] == {"site": "a"}
    ids = [item["event"]["id"] for item in items]
    assert set(ids) <= event_ids(client)
    targets = audited_targets(client)
    assert all(targets.count(event_id) == 1 for event_id in ids)
    for event_id, item in zip(ids, items, strict=True):
        assert client.get(f"/api/v1/events/{event_id}").get_json() == item["event"]


def test_a_replayed_batch_returns_the_first_results_and_writes_nothing(
    client: FlaskClient,
) -> None:
    events = [{"name": f"e{n}", "idempotency_key": f"replay-key-{n:04d}"} for n in range(3)]
    first = post(client, *events).get_json()["items"]
    before = (event_ids(client), len(audited_targets(client)))
    again = post(client, *events)
    assert again.status_code == 200
    items = again.get_json()["items"]
    assert [item["status"] for item in items] == [200, 200, 200]
    assert [item["event"] for item in items] == [item["event"] for item in first]
    assert (event_ids(client), len(audited_targets(client))) == before


def test_a_batch_mixing_replays_and_new_events(client: FlaskClient) -> None:
    first = post(client, {"name": "old", "idempotency_key": "mixed-key-0001"}).get_json()
    old = first["items"][0]["event"]
    response = post(
        client,
        {"name": "new one"},
        {"name": "old", "idempotency_key": "mixed-key-0001"},
        {"name": "new two", "idempotency_key": "mixed-key-0002"},
        {"name": "new two", "idempotency_key": "mixed-key-0002"},  # same key again in the batch
    )
    items = response.get_json()["items"]
    assert [item["status"] for item in items] == [201, 200, 201, 200]
    assert items[1]["event"] == old
    assert items[3]["event"] == items[2]["event"]
    assert len({item["event"]["id"] for item in items}) == 3


def test_a_key_reused_for_another_event_refuses_the_whole_batch(client: FlaskClient) -> None:
    post(client, {"name": "original", "idempotency_key": "reused-key-0001"})
    before = event_ids(client)
    response = post(
        client, {"name": "fine"}, {"name": "different", "idempotency_key": "reused-key-0001"}
    )
    assert response.status_code == 422
    assert "events[1]" in problem_of(response)["detail"]
    assert event_ids(client) == before


def test_more_than_the_maximum_is_422_and_writes_nothing(client: FlaskClient) -> None:
    before = (event_ids(client), len(audited_targets(client)))
    response = post(client, *[{"name": f"n{n}"} for n in range(MAX_BATCH_EVENTS + 1)])
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["field"] == "events"
    assert post(client).status_code == 422  # and fewer than one
    assert (event_ids(client), len(audited_targets(client))) == before
    full = post(client, *[{"name": f"n{n}"} for n in range(MAX_BATCH_EVENTS)])
    assert full.status_code == 200
    assert len(full.get_json()["items"]) == MAX_BATCH_EVENTS


def test_one_invalid_item_is_422_and_nothing_is_written(client: FlaskClient) -> None:
    before = (event_ids(client), len(audited_targets(client)))
    for bad in (
        {"name": ""},
        {"name": "x", "start_event": "yesterday"},
        {"name": "x", "attributes": {"bad key!": "v"}},
        {"name": "x", "idempotency_key": "short"},
        {"name": "x", "created_by": "someone else"},  # unknown fields are refused
        {"name": 5},
    ):
        response = post(client, {"name": "valid"}, bad)
        assert response.status_code == 422, bad
        problem = problem_of(response)
        assert all(error["field"].startswith("events.1") for error in problem["errors"])
    unknown_top_level = client.post(BATCH, json={"events": [{"name": "a"}], "extra": 1})
    assert unknown_top_level.status_code == 422
    assert (event_ids(client), len(audited_targets(client))) == before


def test_a_read_only_token_is_refused_before_the_body_is_read(
    anonymous_client: FlaskClient, client: FlaskClient, make_token: Callable[..., str]
) -> None:
    before = event_ids(client)
    read_only = {"Authorization": f"Bearer {make_token('events:read')}"}
    assert post(anonymous_client, {"name": "x"}, **read_only).status_code == 403
    assert post(anonymous_client, {"bogus": True}, **read_only).status_code == 403
    assert post(anonymous_client, {"name": "x"}).status_code == 401
    assert event_ids(client) == before


def test_the_batch_audit_records_verify_as_one_chain_with_the_rest(
    client: FlaskClient,
    settings: Settings,
    store: EventStore,
    tokens: TokenStore,
    audit_key: bytes,
    make_token: Callable[..., str],
) -> None:
    """A writer of its own (other tests tamper with the shared trail); verified offline."""
    audit = AuditLog(store.database, audit_key, CHECKPOINT_SIGNER)
    own_store = EventStore(store.client, APP_DATABASE, audit)
    app = create_app(settings, Services(events=own_store, tokens=tokens, audit=audit))
    writer = app.test_client()
    writer.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token('events:write')}"
    assert post(writer, *[{"name": f"chained {n}"} for n in range(10)]).status_code == 200
    assert writer.post("/api/v1/events", json={"name": "single"}).status_code == 201
    assert post(writer, *[{"name": f"chained again {n}"} for n in range(3)]).status_code == 200
    audit.checkpoint()
    lines = [
        line
        for line in client.get("/api/v1/audit").get_data(as_text=True).splitlines()
        if _writer(json.loads(line)) == audit.writer_id
    ]
    report = verify_export(lines, audit_key, CHECKPOINT_KEYS)
    assert report.ok, [problem.describe() for problem in report.problems]
    assert report.records_checked == 14
    assert report.checkpoints_checked == 1


def _writer(line: dict[str, Any]) -> str:
    if "writer_id" in line:
        return str(line["writer_id"])
    return str(line.get("chain", "")).split("/")[0]

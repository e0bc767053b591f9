"""The events API against a real mongod: every endpoint and every error status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from support import problem_of

EVENTS = "/api/v1/events"


def create(client: FlaskClient, **body: object) -> dict[str, object]:
    response = client.post(EVENTS, json={"name": "deploy", **body})
    assert response.status_code == 201, response.data
    result: dict[str, object] = response.get_json()
    return result


def test_create_returns_201_location_etag_and_defaults_start_to_now(client: FlaskClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = client.post(EVENTS, json={"name": "deploy", "attributes": {"env": "prod"}})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"{EVENTS}/{body['id']}"
    assert response.headers["ETag"] == f'"{body["id"]}.1"'
    start = datetime.fromisoformat(body["start_event"].replace("Z", "+00:00"))
    assert before <= start <= datetime.now(UTC) + timedelta(seconds=1)
    assert body["stop_event"] is None
    assert body["attributes"] == {"env": "prod"}
    assert body["version"] == 1


def test_create_keeps_given_start_event_at_millisecond_precision(client: FlaskClient) -> None:
    body = create(client, start_event="2026-01-31T12:00:00.123456Z")
    assert body["start_event"] == "2026-01-31T12:00:00.123Z"
    fetched = client.get(f"{EVENTS}/{body['id']}").get_json()
    assert fetched == body


def test_idempotency_key_replays_the_first_result(client: FlaskClient) -> None:
    headers = {"Idempotency-Key": "retry-key-0001"}
    first = client.post(EVENTS, json={"name": "once"}, headers=headers)
    second = client.post(EVENTS, json={"name": "once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    listed = client.get(EVENTS).get_json()["items"]
    assert [item["name"] for item in listed] == ["once"]


def test_idempotency_key_with_a_different_body_is_422(client: FlaskClient) -> None:
    headers = {"Idempotency-Key": "retry-key-0002"}
    assert client.post(EVENTS, json={"name": "a"}, headers=headers).status_code == 201
    response = client.post(EVENTS, json={"name": "b"}, headers=headers)
    assert response.status_code == 422
    assert problem_of(response)["type"].endswith("idempotency-key-reused")
    assert len(client.get(EVENTS).get_json()["items"]) == 1


def test_idempotency_key_is_scoped_to_the_caller(
    anonymous_client: FlaskClient, make_token: Callable[..., str]
) -> None:
    """Another caller sending the same key and body gets its own event, never the first one."""
    headers = {"Idempotency-Key": "shared-key-0001"}
    owner = {"Authorization": f"Bearer {make_token('events:write')}", **headers}
    other = {"Authorization": f"Bearer {make_token('events:write')}", **headers}
    first = anonymous_client.post(EVENTS, json={"name": "mine"}, headers=owner)
    stolen = anonymous_client.post(EVENTS, json={"name": "mine"}, headers=other)
    assert first.status_code == stolen.status_code == 201
    assert stolen.get_json()["id"] != first.get_json()["id"]
    assert "Idempotent-Replayed" not in stolen.headers
    replay = anonymous_client.post(EVENTS, json={"name": "mine"}, headers=owner)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] == first.get_json()["id"]


def test_get_unknown_event_is_404(client: FlaskClient) -> None:
    response = client.get(f"{EVENTS}/{'0' * 24}")
    assert response.status_code == 404
    assert problem_of(response)["title"] == "Not Found"


def test_malformed_id_is_400_with_field(client: FlaskClient) -> None:
    response = client.get(f"{EVENTS}/not-an-id")
    assert response.status_code == 400
    assert problem_of(response)["errors"][0]["field"] == "event_id"


def test_stop_sets_stop_event_and_bumps_version(client: FlaskClient) -> None:
    event = create(client, start_event="2026-01-01T00:00:00Z")
    response = client.patch(f"{EVENTS}/{event['id']}", json={"stop_event": "2026-01-01T01:00:00Z"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["stop_event"] == "2026-01-01T01:00:00.000Z"
    assert body["version"] == 2
    assert response.headers["ETag"] == f'"{event["id"]}.2"'


def test_stop_defaults_to_now(client: FlaskClient) -> None:
    event = create(client, start_event="2026-01-01T00:00:00Z")
    body = client.patch(f"{EVENTS}/{event['id']}", json={}).get_json()
    assert body["stop_event"] is not None


def test_stop_before_start_is_400_and_writes_nothing(client: FlaskClient) -> None:
    event = create(client, start_event="2026-01-01T00:00:00Z")
    response = client.patch(f"{EVENTS}/{event['id']}", json={"stop_event": "2025-12-31T23:59:59Z"})
    assert response.status_code == 400
    assert problem_of(response)["errors"][0]["field"] == "stop_event"
    assert client.get(f"{EVENTS}/{event['id']}").get_json()["stop_event"] is None


def test_already_stopped_is_409_unless_if_match_is_current(client: FlaskClient) -> None:
    event = create(client, start_event="2026-01-01T00:00:00Z")
    url = f"{EVENTS}/{event['id']}"
    stopped = client.patch(url, json={"stop_event": "2026-01-01T01:00:00Z"})
    again = client.patch(url, json={"stop_event": "2026-01-01T02:00:00Z"})
    assert again.status_code == 409
    assert problem_of(again)["type"].endswith("already-stopped")

    stale = client.patch(
        url, json={"stop_event": "2026-01-01T02:00:00Z"}, headers={"If-Match": '"x.1"'}
    )
    assert stale.status_code == 412
    problem_of(stale)

    fixed = client.patch(
        url,
        json={"stop_event": "2026-01-01T02:00:00Z"},
        headers={"If-Match": stopped.headers["ETag"]},
    )
    assert fixed.status_code == 200
    assert fixed.get_json()["stop_event"] == "2026-01-01T02:00:00.000Z"


def test_stop_unknown_event_is_404(client: FlaskClient) -> None:
    response = client.patch(f"{EVENTS}/{'a' * 24}", json={})
    assert response.status_code == 404
    problem_of(response)


def test_delete_then_404(client: FlaskClient) -> None:
    event = create(client)
    url = f"{EVENTS}/{event['id']}"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404


def test_list_filters_and_orders_newest_first(client: FlaskClient) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    ids = []
    for hour in range(5):
        ids.append(
            create(
                client,
                name="job" if hour % 2 else "other",
                start_event=(base + timedelta(hours=hour)).isoformat().replace("+00:00", "Z"),
            )["id"]
        )
    client.patch(f"{EVENTS}/{ids[1]}", json={})

    everything = client.get(EVENTS).get_json()["items"]
    assert [item["id"] for item in everything] == list(reversed(ids))

    ranged = client.get(
        EVENTS, query_string={"from": "2026-03-01T01:00:00Z", "to": "2026-03-01T03:00:00Z"}
    ).get_json()["items"]
    assert [item["id"] for item in ranged] == [ids[2], ids[1]]

    named = client.get(EVENTS, query_string={"name": "job"}).get_json()["items"]
    assert [item["id"] for item in named] == [ids[3], ids[1]]

    stopped = client.get(EVENTS, query_string={"status": "stopped"}).get_json()["items"]
    assert [item["id"] for item in stopped] == [ids[1]]
    open_ = client.get(EVENTS, query_string={"status": "open"}).get_json()["items"]
    assert ids[1] not in [item["id"] for item in open_]
    assert len(open_) == 4


def test_cursor_pagination_is_stable_under_concurrent_inserts(client: FlaskClient) -> None:
    base = datetime(2026, 4, 1, tzinfo=UTC)
    for minute in range(7):
        create(
            client,
            start_event=(base + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        )
    same_time = "2026-04-01T00:03:00Z"  # ties on start_event are ordered by id
    create(client, start_event=same_time)

    seen: list[str] = []
    page = client.get(EVENTS, query_string={"limit": 3}).get_json()
    seen += [item["id"] for item in page["items"]]
    # Newer and older events inserted between page requests must not shift pages.
    create(client, start_event="2026-05-01T00:00:00Z")
    create(client, start_event="2026-04-01T00:03:00Z")
    while page["next"]:
        page = client.get(EVENTS, query_string={"limit": 3, "cursor": page["next"]}).get_json()
        seen += [item["id"] for item in page["items"]]
    assert len(seen) == len(set(seen)), "no event is returned twice"
    assert len(seen) >= 8


def test_limit_bounds(client: FlaskClient) -> None:
    assert client.get(EVENTS, query_string={"limit": 501}).status_code == 400
    assert client.get(EVENTS, query_string={"limit": 0}).status_code == 400
    assert client.get(EVENTS, query_string={"limit": 500}).status_code == 200


def test_tampered_cursor_is_400(client: FlaskClient) -> None:
    extra_field = "eyJzIjowLCJpIjoiMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwIiwieCI6MX0"  # {"s","i","x"}
    for cursor in ["abc", "eyJzIjoxfQ", "eyJzIjoiMSIsImkiOiIxIn0", extra_field]:
        response = client.get(EVENTS, query_string={"cursor": cursor})
        assert response.status_code == 400, cursor
        problem_of(response)


def test_unknown_query_parameter_is_400(client: FlaskClient) -> None:
    response = client.get(EVENTS, query_string={"name[$ne]": "x"})
    assert response.status_code == 400
    problem_of(response)


def test_replaying_a_key_whose_event_was_deleted_is_409(client: FlaskClient) -> None:
    headers = {"Idempotency-Key": "retry-key-0003"}
    first = client.post(EVENTS, json={"name": "gone"}, headers=headers)
    assert client.delete(f"{EVENTS}/{first.get_json()['id']}").status_code == 204
    retried = client.post(EVENTS, json={"name": "gone"}, headers=headers)
    assert retried.status_code == 409
    assert problem_of(retried)["type"].endswith("idempotent-result-gone")
    assert client.get(EVENTS).get_json()["items"] == []

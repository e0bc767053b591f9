"""Every error is RFC 9457 problem+json; bad input never reaches MongoDB."""

from __future__ import annotations

import json
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo.errors import DuplicateKeyError, OperationFailure

from eventsvc.app import create_app
from eventsvc.auth import public_route
from eventsvc.services import build_services
from eventsvc.settings import Settings
from eventsvc.store import StoreUnavailable, connect, unavailable_on_connection_errors
from support import CHECKPOINT_SIGNER, free_port, problem_of

EVENTS = "/api/v1/events"


def count_events(client: FlaskClient) -> int:
    return len(client.get(EVENTS, query_string={"limit": 500}).get_json()["items"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 42}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"name": "ok", "extra": 1}, "extra"),
        ({"name": "ok", "$where": "sleep(1000)"}, "$where"),
        ({"name": {"$ne": None}}, "name"),
        ({"name": "ok", "attributes": {"$gt": "x"}}, "attributes"),
        ({"name": "ok", "attributes": {"a.b": "x"}}, "attributes"),
        ({"name": "ok", "attributes": {"k": 1}}, "attributes.k"),
        ({"name": "ok", "attributes": {f"k{i}": "v" for i in range(33)}}, "attributes"),
        ({"name": "ok", "attributes": {"k": "v" * 513}}, "attributes"),
        ({"name": "ok", "start_event": "2026-01-01T00:00:00"}, "start_event"),
        ({"name": "ok", "start_event": "2026-01-01T00:00:00+02:00"}, "start_event"),
        ({"name": "ok", "start_event": "2200-01-01T00:00:00Z"}, "start_event"),
        ({"name": "ok", "start_event": "1960-01-01T00:00:00Z"}, "start_event"),
        ({"name": "ok", "start_event": 1767225600}, "start_event"),
        ({"name": "ok", "start_event": "yesterday"}, "start_event"),
    ],
)
def test_invalid_create_is_400_with_field_and_nothing_written(
    client: FlaskClient, body: dict[str, object], field: str
) -> None:
    response = client.post(EVENTS, json=body)
    assert response.status_code == 400
    problem = problem_of(response)
    assert field in [error["field"] for error in problem["errors"]], problem
    assert count_events(client) == 0


def test_error_body_does_not_echo_input(client: FlaskClient) -> None:
    marker = "<script>alert(1)</script>"
    response = client.post(EVENTS, json={"name": 5, "attributes": {"k": marker}, "x": marker})
    assert response.status_code == 400
    assert marker not in response.get_data(as_text=True)


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post(EVENTS, data="name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    problem_of(response)


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(EVENTS, data='{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in problem_of(response)["detail"]


def test_non_object_json_is_400(client: FlaskClient) -> None:
    response = client.post(EVENTS, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    problem_of(response)


@pytest.mark.parametrize("depth", [9, 20_000])
def test_deeply_nested_json_is_400(client: FlaskClient, depth: int) -> None:
    body = '{"name": "x", "attributes": ' + "[" * depth + "]" * depth + "}"
    response = client.post(EVENTS, data=body, content_type="application/json")
    assert response.status_code in (400, 413)
    problem_of(response)
    assert count_events(client) == 0


def test_body_too_large_is_413(client: FlaskClient) -> None:
    body = json.dumps({"name": "x", "attributes": {"k": "v" * 70_000}})
    response = client.post(EVENTS, data=body, content_type="application/json")
    assert response.status_code == 413
    problem_of(response)


def test_unknown_route_is_404_problem(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    problem_of(response)


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.put(EVENTS, json={"name": "x"})
    assert response.status_code == 405
    problem_of(response)
    assert "POST" in response.headers["Allow"]


def test_unexpected_error_is_500_without_internals(app: Flask) -> None:
    @app.get("/api/v1/boom")
    @public_route("test: reaches the view so that it can fail")
    def boom() -> None:
        raise RuntimeError("internal detail: mongodb://user:hunter2@db")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "hunter2" not in text
    assert "RuntimeError" not in text
    assert problem_of(response)["request_id"] == response.headers["X-Request-Id"]


def test_dead_database_is_503_within_seconds() -> None:
    settings = Settings(
        profile="test",
        mongodb_hosts=f"127.0.0.1:{free_port()}",
        mongodb_replica_set=None,
        mongodb_tls=False,
        mongodb_timeout_ms=800,
    )
    services = build_services(
        connect(settings)["eventsvc"],
        audit_key=b"k" * 32,
        token_pepper=b"p" * 32,
        checkpoint_signer=CHECKPOINT_SIGNER,
    )
    client = create_app(settings, services).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer evt_" + "a" * 16 + "_" + "b" * 43
    try:
        started = time.monotonic()
        response = client.post(EVENTS, json={"name": "x"})
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        problem_of(response)
        assert elapsed < 5
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
    finally:
        services.close()


def test_one_deadline_bounds_all_the_database_work_of_a_request() -> None:
    """The 503 comes after one timeout, not one per operation.

    A POST touches MongoDB several times (the rate-limit counter, the token,
    the transaction); without a shared deadline each would
    wait its own timeout for a server that does not answer.
    """
    settings = Settings(
        profile="test",
        mongodb_hosts=f"127.0.0.1:{free_port()}",
        mongodb_replica_set=None,
        mongodb_tls=False,
        mongodb_timeout_ms=1500,
    )
    services = build_services(
        connect(settings)["eventsvc"],
        audit_key=b"k" * 32,
        token_pepper=b"p" * 32,
        checkpoint_signer=CHECKPOINT_SIGNER,
    )
    client = create_app(settings, services).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer evt_" + "a" * 16 + "_" + "b" * 43
    try:
        started = time.monotonic()
        response = client.post(EVENTS, json={"name": "x"})
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert problem_of(response)["status"] == 503
        assert elapsed < 2 * 1.5, "the request waited more than its one deadline"
    finally:
        services.close()


@pytest.mark.parametrize(
    ("code", "labels"),
    [
        (211, []),  # KeyNotFound: every member restarted, the client's cluster time is stale
        (10107, []),  # NotWritablePrimary
        (189, []),  # PrimarySteppedDown
        (11602, []),  # InterruptedDueToReplStateChange
        (1, ["TransientTransactionError"]),
        (1, ["RetryableWriteError"]),
    ],
)
def test_server_errors_that_mean_not_now_are_unavailable(code: int, labels: list[str]) -> None:
    def fail() -> None:
        raise OperationFailure("not now", code=code, details={"errorLabels": labels})

    with pytest.raises(StoreUnavailable):
        unavailable_on_connection_errors(fail)


def test_other_server_errors_are_not_unavailable() -> None:
    def duplicate() -> None:
        raise DuplicateKeyError("E11000", code=11000)

    with pytest.raises(DuplicateKeyError):
        unavailable_on_connection_errors(duplicate)

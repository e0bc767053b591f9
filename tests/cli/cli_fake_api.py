"""A stand-in for the events API, in memory, until the real app can be served in tests.

It follows the contract the CLI relies on (paths, JSON shapes, problem+json,
cursors, Idempotency-Key) and records what it received, so tests can check
headers. It is deliberately small; the real API is tested in tests/api.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, Response, json, request

from eventsvc.clock import rfc3339, utc_now

PAGE_DEFAULT = 50


@dataclass
class Received:
    """What one request looked like on the server side."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeState:
    """The fake's memory: events, idempotency keys, requests seen."""

    token: str | None = None
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    problem_override: tuple[int, dict[str, Any]] | None = None


def _now() -> str:
    return rfc3339(utc_now())


def _problem(status: int, title: str, detail: str, errors: Any = None) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def create_fake_app(state: FakeState) -> Flask:
    """Build the stand-in app around ``state``."""
    app = Flask(__name__)

    @app.before_request
    def _record_and_authorize() -> Response | None:
        body = request.get_json(silent=True) if request.data else None
        state.received.append(
            Received(request.method, request.full_path, dict(request.headers), body)
        )
        if (
            state.token is not None
            and request.headers.get("Authorization") != f"Bearer {state.token}"
        ):
            return _problem(401, "Unauthorized", "a valid bearer token is required")
        if state.problem_override is not None:
            status, problem = state.problem_override
            return Response(json.dumps(problem), status=status, mimetype="application/problem+json")
        return None

    @app.post("/api/v1/events")
    def create() -> Response:
        body = request.get_json()
        key = request.headers.get("Idempotency-Key")
        if key in state.idempotency:
            return _json(state.events[state.idempotency[key]], 201)
        start = body.get("start_event", _now())
        if _utc(start) is None:
            return _problem(
                422,
                "Unprocessable Content",
                "invalid event",
                [{"field": "start_event", "message": "must be RFC 3339 UTC"}],
            )
        event_id = secrets.token_hex(12)
        now = _now()
        state.events[event_id] = {
            "id": event_id,
            "name": body["name"],
            "start_event": start,
            "stop_event": None,
            "attributes": body.get("attributes", {}),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        if key:
            state.idempotency[key] = event_id
        response = _json(state.events[event_id], 201)
        response.headers["Location"] = f"/api/v1/events/{event_id}"
        return response

    @app.get("/api/v1/events")
    def list_events() -> Response:
        items = sorted(state.events.values(), key=lambda e: e["start_event"], reverse=True)
        args = request.args
        if "from" in args:
            items = [e for e in items if _utc(e["start_event"]) >= _utc(args["from"])]  # type: ignore[operator]
        if "to" in args:
            items = [e for e in items if _utc(e["start_event"]) < _utc(args["to"])]  # type: ignore[operator]
        if "name" in args:
            items = [e for e in items if e["name"] == args["name"]]
        if args.get("status") == "open":
            items = [e for e in items if e["stop_event"] is None]
        if args.get("status") == "stopped":
            items = [e for e in items if e["stop_event"] is not None]
        offset = int(args.get("cursor", "0"))
        limit = int(args.get("limit", PAGE_DEFAULT))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return _json({"items": page, "next": str(offset + limit) if more else None}, 200)

    @app.get("/api/v1/events/<event_id>")
    def get_event(event_id: str) -> Response:
        if event_id not in state.events:
            return _problem(404, "Not Found", f"event {event_id} does not exist")
        return _json(state.events[event_id], 200)

    @app.patch("/api/v1/events/<event_id>")
    def stop_event(event_id: str) -> Response:
        event = state.events.get(event_id)
        if event is None:
            return _problem(404, "Not Found", f"event {event_id} does not exist")
        if event["stop_event"] is not None:
            return _problem(409, "Conflict", f"event {event_id} is already stopped")
        stop = (request.get_json() or {}).get("stop_event", _now())
        if _utc(stop) is None or _utc(stop) < _utc(event["start_event"]):  # type: ignore[operator]
            return _problem(
                422,
                "Unprocessable Content",
                "invalid stop",
                [{"field": "stop_event", "message": "must not be before start_event"}],
            )
        event.update(stop_event=stop, updated_at=_now(), version=event["version"] + 1)
        return _json(event, 200)

    @app.delete("/api/v1/events/<event_id>")
    def delete_event(event_id: str) -> Response:
        if state.events.pop(event_id, None) is None:
            return _problem(404, "Not Found", f"event {event_id} does not exist")
        return Response(status=204)

    return app


def _json(document: Any, status: int) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")

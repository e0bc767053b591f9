"""RFC 9457 problem details: the one shape of every 4xx/5xx response.

Error bodies never echo internals (exception text, stack traces, database
messages) and never echo request values: a field list says *which* field is
wrong and why, not what was sent.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from eventsvc.api.ratelimits import RateLimited
from eventsvc.api.services import denial_recorder
from eventsvc.audit.denials import DenialKey
from eventsvc.auth import Forbidden, Unauthenticated, request_context, www_authenticate
from eventsvc.domain import (
    EventAlreadyStopped,
    EventNotFound,
    IdempotencyKeyReused,
    IdempotentResultGone,
    StopBeforeStart,
    VersionMismatch,
)
from eventsvc.metrics import record_rate_limited
from eventsvc.store import InvalidCursor, StoreUnavailable
from eventsvc.tokens import TokenNotFound

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://eventsvc.example/problems/"


def problem_document(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    errors: list[dict[str, str]] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The RFC 9457 body: the one shape, also for what gunicorn refuses (api/refusals.py)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (kind or str(status)),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    if request_id:
        body["request_id"] = request_id
    return body


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body = problem_document(
        status, title, detail, kind=kind, errors=errors, request_id=g.get("request_id")
    )
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# Routes whose body, when it does not validate, is refused with 422 rather than
# the API's usual 400: the batch create's contract (too many events included).
UNPROCESSABLE_WHEN_INVALID = frozenset({"events.create_events_batch"})


def validation_problem(error: ValidationError) -> Response:
    """400 (422: batch create) with one entry per invalid field (flask-openapi3's callback)."""
    status = 422 if request.endpoint in UNPROCESSABLE_WHEN_INVALID else 400
    errors = [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "(body)",
            "message": item["msg"],
        }
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return problem(
        status,
        "Invalid request",
        "one or more fields are invalid",
        kind="validation",
        errors=errors,
    )


# Domain and store errors, mapped to HTTP in one place.
_DOMAIN_STATUS: list[tuple[type[Exception], int, str, str]] = [
    (EventNotFound, 404, "Not Found", "not-found"),
    (EventAlreadyStopped, 409, "Event already stopped", "already-stopped"),
    (VersionMismatch, 412, "Precondition Failed", "precondition-failed"),
    (StopBeforeStart, 400, "Invalid request", "validation"),
    (IdempotencyKeyReused, 422, "Idempotency-Key reused", "idempotency-key-reused"),
    (IdempotentResultGone, 409, "Idempotent result gone", "idempotent-result-gone"),
    (InvalidCursor, 400, "Invalid request", "validation"),
    (TokenNotFound, 404, "Not Found", "not-found"),
]


def record_denied(reason: str) -> None:
    """Audit a refused request (401, 403, 429), aggregated per source, reason and route.

    The source is the authenticated actor when there is one, else the
    client address; the route is the template, never the raw path, so a
    flood cannot make the keys (and the trail) grow without bound (see
    :mod:`eventsvc.audit.denials`). An audit outage is logged there, never
    turned into a 500.
    """
    context = request_context()
    source = context.actor
    if source == "anonymous":
        source = f"address:{request.remote_addr or 'unknown'}"
    rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
    key = DenialKey(source=source, reason=reason[:100], route=f"{request.method} {rule}"[:200])
    denial_recorder().record(key, context)


def register_error_handlers(app: Flask) -> None:
    """Map every error the app can raise to a problem+json response."""
    for error_type, status, title, kind in _DOMAIN_STATUS:

        def handle(
            error: Exception, status: int = status, title: str = title, kind: str = kind
        ) -> Response:
            errors = None
            if isinstance(error, StopBeforeStart):
                errors = [{"field": "stop_event", "message": str(error)}]
            elif isinstance(error, InvalidCursor):
                errors = [{"field": "cursor", "message": str(error)}]
            return problem(status, title, str(error), kind=kind, errors=errors)

        app.register_error_handler(error_type, handle)

    @app.errorhandler(Unauthenticated)
    def unauthenticated(error: Unauthenticated) -> Response:
        record_denied(f"401 {error.error or 'no_token'}: {error}")
        return problem(
            401,
            "Unauthorized",
            str(error),
            kind="unauthorized",
            headers={"WWW-Authenticate": www_authenticate(error)},
        )

    @app.errorhandler(Forbidden)
    def forbidden(error: Forbidden) -> Response:
        record_denied(f"403 insufficient_scope: {error}")
        return problem(
            403,
            "Forbidden",
            str(error),
            kind="forbidden",
            headers={"WWW-Authenticate": www_authenticate(error)},
        )

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited) -> Response:
        record_rate_limited()
        record_denied("429 rate limit exceeded")
        return problem(
            429,
            "Too Many Requests",
            str(error),
            headers={"Retry-After": str(error.retry_after)},
        )

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error: Exception) -> Response:
        log.warning("database unavailable: %s", error)
        return problem(
            503,
            "Service Unavailable",
            "the database is unavailable; retry later",
            kind="unavailable",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if isinstance(error.response, Response) and error.response.mimetype == PROBLEM_MIMETYPE:
            return error.response  # already a problem (e.g. from validation)
        return problem(status, error.name, error.description, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(
            500,
            "Internal Server Error",
            "an unexpected error occurred; quote the request_id when reporting it",
        )

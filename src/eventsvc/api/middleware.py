"""What every request goes through: ids, body checks, security headers, access log."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from eventsvc.auth import authorize_request
from eventsvc.observability import (
    TRACE_ID_HEADER,
    current_trace_id,
    request_seconds,
    route_template,
)
from eventsvc.store import request_deadline

log = logging.getLogger("eventsvc.access")

REQUEST_ID_HEADER = "X-Request-Id"
TRACEPARENT_HEADER = "traceparent"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_JSON_DEPTH = 8
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
HSTS = "max-age=31536000; includeSubDomains"
# On every response, whatever its path (gunicorn's own refusals too: api/refusals.py).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((_json_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_json_depth(item) for item in value), default=0)
    return 0


def assign_request_id() -> None:
    """Mint our own request id; keep the caller's ids apart, labelled as theirs.

    A caller chooses its ``X-Request-Id`` and ``traceparent``, so neither may
    stand in for the server's id in logs or the audit trail (one caller could
    reuse another's id to muddle an investigation). Well-formed values are
    kept as ``g.client_request_id`` / ``g.client_traceparent`` for
    correlation; malformed ones are dropped.
    """
    g.request_id = str(uuid.uuid4())
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.client_request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else None
    traceparent = request.headers.get(TRACEPARENT_HEADER, "")
    g.client_traceparent = traceparent if _TRACEPARENT.match(traceparent) else None


def check_json_body() -> None:
    """Refuse non-JSON, malformed or deeply nested bodies before any route runs.

    Flask's MAX_CONTENT_LENGTH has already bounded the size (413).
    """
    if request.method not in BODY_METHODS or not request.path.startswith("/api/"):
        return
    if request.url_rule is None:
        return  # no such route or method: the 404/405 handler answers, not a body error
    if not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", ""):
        return  # no body (e.g. POST .../revoke): routes that need one answer 400
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body = request.get_json(cache=True)
    except RecursionError as error:
        raise BadRequest("the JSON body is nested too deeply") from error
    except BadRequest as error:
        raise BadRequest("the body is not valid JSON") from error
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object")
    if _json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")


def add_security_headers(response: Response) -> Response:
    """Headers every response carries; the docs page gets its own CSP."""
    headers = response.headers
    headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    trace_id = current_trace_id()  # the caller's (from traceparent) or a new one
    if trace_id is not None:
        headers[TRACE_ID_HEADER] = trace_id
    headers.update(SECURITY_HEADERS)
    if request.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    if request.path.startswith("/docs"):
        headers["Content-Security-Policy"] = DOCS_CSP
    else:
        headers["Content-Security-Policy"] = API_CSP
        headers["Cache-Control"] = "no-store"
    return response


def log_request(response: Response) -> Response:
    """One structured access-log line per request."""
    seconds = request_seconds()
    latency_ms = None if seconds is None else round(seconds * 1000, 2)
    log.info(
        "request",
        extra={
            "method": request.method,
            "route": route_template(),
            "path": request.path,
            "status": response.status_code,
            "latency_ms": latency_ms,
        },
    )
    return response


def register_middleware(app: Flask) -> None:
    """Request ids first, response headers and the access log last."""
    app.before_request(assign_request_id)
    app.after_request(add_security_headers)
    app.after_request(log_request)


def register_request_checks(app: Flask) -> None:
    """Authorise, then look at the body: register after the rate limits.

    The order is the control: the rate limits verify the token and count the
    caller first (:mod:`eventsvc.api.ratelimits`; one counter hit),
    :func:`~eventsvc.auth.authorize_request` refuses unauthenticated or
    under-scoped callers, and only then is the body parsed (here) and
    validated (by flask-openapi3, inside the view).
    """
    app.before_request(authorize_request)
    app.before_request(check_json_body)


class DatabaseDeadline:
    """WSGI middleware: all MongoDB work of one request shares one deadline.

    ``EVENTSVC_MONGODB_TIMEOUT_MS`` bounds how long a client waits for an
    answer when MongoDB has no primary or does not answer: then the store
    raises StoreUnavailable and the client gets a 503 problem+json with
    ``Retry-After``, never a hang (see :func:`eventsvc.store.request_deadline`).
    A streamed body (the audit export) is produced after this returns: its
    reads keep the per-operation bound only.
    """

    def __init__(self, wsgi_app: Any, seconds: float) -> None:
        self.wsgi_app = wsgi_app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with request_deadline(self.seconds):
            body: Iterable[bytes] = self.wsgi_app(environ, start_response)
            return body

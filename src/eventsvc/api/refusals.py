"""Requests gunicorn refuses before the app runs, answered the way the app answers.

gunicorn parses the request line and the headers itself. What it cannot parse,
or what is over its limits (``limit_request_line``, ``limit_request_fields``,
``limit_request_field_size``), it answers with a small HTML page and no other
headers: a 414 or 431 without HSTS, nosniff or a CSP, and in another shape
than every other error of the API. The worker
(:class:`eventsvc.tlsworker.ClientCertThreadWorker`) writes these answers with
:func:`refusal_response` instead: ``application/problem+json`` and the same
security headers as the app's responses.

Nothing of the refused request is echoed, in the body or in the log: it is the
input that was too long or malformed, and it may hold a token.
"""

from __future__ import annotations

import json
import ssl
import uuid
from dataclasses import dataclass
from http import HTTPStatus

from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)

from eventsvc.api.middleware import API_CSP, HSTS, REQUEST_ID_HEADER, SECURITY_HEADERS
from eventsvc.api.problems import PROBLEM_MIMETYPE, problem_document


@dataclass(frozen=True)
class Refusal:
    """The status and the fixed explanation of one kind of refusal."""

    status: HTTPStatus
    detail: str
    server_fault: bool = False  # a failure of ours (logged as an error), not the request's


_SERVER_ERROR = Refusal(
    HTTPStatus.INTERNAL_SERVER_ERROR, "the server could not answer this request", server_fault=True
)

# First match wins: the two response-header errors are subclasses of request ones.
_REFUSALS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Refusal], ...] = (
    ((InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem), _SERVER_ERROR),
    (
        LimitRequestLine,
        Refusal(
            HTTPStatus.REQUEST_URI_TOO_LONG, "the request line (method, path and query) is too long"
        ),
    ),
    (
        LimitRequestHeaders,
        Refusal(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too many header fields, or a header field too long",
        ),
    ),
    (
        ExpectationFailed,
        Refusal(HTTPStatus.EXPECTATION_FAILED, "only Expect: 100-continue is supported"),
    ),
    (
        UnsupportedTransferCoding,
        Refusal(HTTPStatus.NOT_IMPLEMENTED, "only the chunked transfer coding is supported"),
    ),
    (
        (ForbiddenProxyRequest, ssl.SSLError),
        Refusal(HTTPStatus.FORBIDDEN, "the connection is not allowed"),
    ),
    (ParseException, Refusal(HTTPStatus.BAD_REQUEST, "the request is not valid HTTP/1.1")),
)


def refusal_for(error: BaseException) -> Refusal:
    """What to answer for an error gunicorn raised while reading or answering a request."""
    for kinds, refusal in _REFUSALS:
        if isinstance(error, kinds):
            return refusal
    return _SERVER_ERROR


def refusal_response(refusal: Refusal, *, https: bool) -> bytes:
    """The whole HTTP/1.1 response, ready for the socket; the connection is closed after it."""
    request_id = str(uuid.uuid4())
    document = problem_document(
        refusal.status.value, refusal.status.phrase, refusal.detail, request_id=request_id
    )
    body = json.dumps(document).encode("ascii")
    headers = {
        "Connection": "close",
        "Content-Type": PROBLEM_MIMETYPE,
        "Content-Length": str(len(body)),
        REQUEST_ID_HEADER: request_id,
        **SECURITY_HEADERS,
        "Content-Security-Policy": API_CSP,
        "Cache-Control": "no-store",
    }
    if https:
        headers["Strict-Transport-Security"] = HSTS
    status_line = f"HTTP/1.1 {refusal.status.value} {refusal.status.phrase}\r\n"
    head = status_line + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("ascii") + body

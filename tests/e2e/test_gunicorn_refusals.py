"""What gunicorn refuses before the app runs is still problem+json with the security headers.

gunicorn answers an over-long request line (414), too many or too large
header fields (431) and a malformed request (400) itself. Its own answer is
an HTML page without HSTS, nosniff or a CSP; the worker answers instead
(src/eventsvc/api/refusals.py). Each answer here also goes through the DAST
stage's passive checks, the ones that failed the gate on gunicorn's 414.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl

import pytest
import requests

from secgate.stages.dast import passive
from secgate.stages.dast.client import Answer
from support import ApiServer, split_http_response

LIMIT_REQUEST_LINE = 4094  # server.gunicorn_options
LIMIT_REQUEST_FIELD_SIZE = 8190
LIMIT_REQUEST_FIELDS = 50


def _answer(response: requests.Response) -> Answer:
    return Answer(
        method=response.request.method or "GET",
        path=response.request.path_url,
        status=response.status_code,
        headers={name.lower(): value for name, value in response.headers.items()},
        body=response.content,
        authenticated=True,
    )


def _assert_refused_as_problem(response: requests.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert passive.check(_answer(response)) == []
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith(f"/{status}")
    assert body["request_id"] == response.headers["X-Request-Id"]
    return dict(body)


def _get(api_server: ApiServer, path: str, **headers: str) -> requests.Response:
    return requests.get(
        f"{api_server.base_url}{path}",
        headers={**api_server.headers, **headers},
        verify=str(api_server.ca_file),
        timeout=10,
    )


def test_an_over_long_request_line_is_414_problem_json(api_server: ApiServer) -> None:
    marker = secrets.token_urlsafe(16)  # stands for a secret pasted into a query
    query = "from=" + marker + "x" * LIMIT_REQUEST_LINE
    response = _get(api_server, f"/api/v1/audit?{query}")
    body = _assert_refused_as_problem(response, 414)
    assert "request line" in str(body["detail"])
    assert marker not in response.text
    assert marker not in api_server.log_text()
    assert "request refused by the HTTP server" in api_server.log_text()


def test_a_request_line_just_under_the_limit_reaches_the_app(api_server: ApiServer) -> None:
    prefix = "/api/v1/events?name="
    fill = LIMIT_REQUEST_LINE - len(f"GET {prefix} HTTP/1.1") - 1
    response = _get(api_server, prefix + "n" * fill)
    # the app answers (a 400 for a name filter longer than allowed), not gunicorn
    assert response.status_code != 414
    assert response.headers["Content-Type"] in {"application/json", "application/problem+json"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Large": "v" * (LIMIT_REQUEST_FIELD_SIZE + 1)},
        {f"X-Field-{index}": "v" for index in range(LIMIT_REQUEST_FIELDS + 1)},
    ],
    ids=["one field too large", "too many fields"],
)
def test_header_fields_over_the_limits_are_431_problem_json(
    api_server: ApiServer, headers: dict[str, str]
) -> None:
    _assert_refused_as_problem(_get(api_server, "/api/v1/events", **headers), 431)


def _raw_exchange(api_server: ApiServer, request: bytes) -> tuple[str, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(api_server.ca_file))
    with (
        socket.create_connection(("127.0.0.1", api_server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(request)
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    status_line, headers, body = split_http_response(received)
    return status_line, {name.lower(): value for name, value in headers.items()}, body


@pytest.mark.parametrize(
    "request_bytes",
    [b"NOT A REQUEST\r\n\r\n", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"],
    ids=["garbage request line", "unknown HTTP version"],
)
def test_a_malformed_request_is_400_problem_json(
    api_server: ApiServer, request_bytes: bytes
) -> None:
    status_line, headers, body = _raw_exchange(api_server, request_bytes)
    assert status_line == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/problem+json"
    answer = Answer("GET", "/", 400, headers, body, authenticated=False)
    assert passive.check(answer) == []
    assert json.loads(body)["status"] == 400
    assert b"NOT A REQUEST" not in body
    assert b"9.9" not in body


def test_the_worker_still_serves_after_refusing(api_server: ApiServer) -> None:
    for _ in range(3):
        _raw_exchange(api_server, b"NOT A REQUEST\r\n\r\n")
    assert _get(api_server, "/healthz").status_code == 200

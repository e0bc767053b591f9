"""Which status each of gunicorn's own errors gets (api/refusals.py), and the bytes written."""

from __future__ import annotations

import json
import ssl
from http import HTTPStatus

import pytest
from gunicorn.http import errors

from eventsvc.api.refusals import refusal_for, refusal_response
from support import split_http_response


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.LimitRequestLine(5000, 4094), 414),
        (errors.LimitRequestHeaders("too many"), 431),
        (errors.InvalidRequestLine("x"), 400),
        (errors.InvalidHTTPVersion("9.9"), 400),
        (errors.InvalidHeaderName("x y"), 400),
        (errors.ExpectationFailed("x"), 417),
        (errors.UnsupportedTransferCoding("gzip"), 501),
        (errors.ForbiddenProxyRequest("10.0.0.1"), 403),
        (ssl.SSLError("bad record"), 403),
        # the app's own fault (a header it tried to send), not the client's
        (errors.InvalidResponseHeader("x"), 500),
        (errors.InvalidResponseHeaderName("x"), 500),
        (errors.ConfigurationProblem("x"), 500),
        (RuntimeError("boom"), 500),
    ],
)
def test_each_gunicorn_error_gets_its_status(error: BaseException, status: int) -> None:
    assert refusal_for(error).status == status


def _all_subclasses(kind: type[BaseException]) -> list[type[BaseException]]:
    direct = kind.__subclasses__()
    return direct + [nested for sub in direct for nested in _all_subclasses(sub)]


def test_only_our_own_faults_among_gunicorns_parse_errors_are_500() -> None:
    ours = {
        errors.InvalidResponseHeader,
        errors.InvalidResponseHeaderName,
        errors.ConfigurationProblem,
    }
    kinds = _all_subclasses(errors.ParseException)
    assert ours <= set(kinds)
    for kind in kinds:
        error = kind.__new__(kind)  # only the type matters; constructors differ
        is_500 = refusal_for(error).status == HTTPStatus.INTERNAL_SERVER_ERROR
        assert is_500 == (kind in ours), kind


@pytest.mark.parametrize("https", [True, False])
def test_the_response_is_complete_problem_json(https: bool) -> None:
    refusal = refusal_for(errors.LimitRequestLine(5000, 4094))
    raw = refusal_response(refusal, https=https)
    status_line, headers, body = split_http_response(raw)
    assert status_line == "HTTP/1.1 414 Request-URI Too Long"
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Connection"] == "close"
    assert headers["Content-Type"] == "application/problem+json"
    assert ("Strict-Transport-Security" in headers) is https
    problem = json.loads(body)
    assert problem["status"] == HTTPStatus.REQUEST_URI_TOO_LONG
    assert problem["request_id"] == headers["X-Request-Id"]
    assert refusal_response(refusal, https=https) != raw  # a fresh request id each time

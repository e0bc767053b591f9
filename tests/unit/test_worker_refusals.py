"""The worker's ``handle_error``: what it writes to the client and what it logs.

Called as gunicorn calls it, on a real socket pair; the worker itself is a
stand-in holding only the configuration ``handle_error`` reads. The answers of
a running server are in tests/e2e/test_gunicorn_refusals.py.
"""

from __future__ import annotations

import json
import logging
import socket
from types import SimpleNamespace

import pytest
from gunicorn.http import errors

from eventsvc.tlsworker import ClientCertThreadWorker
from support import split_http_response


def refuse(error: BaseException, *, is_ssl: bool) -> tuple[str, dict[str, str], dict[str, object]]:
    worker = SimpleNamespace(cfg=SimpleNamespace(is_ssl=is_ssl))
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        ClientCertThreadWorker.handle_error(worker, None, server_side, ("127.0.0.1", 5), error)
        server_side.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client_side.recv(65536):
            received += chunk
    status_line, headers, body = split_http_response(received)
    return status_line, headers, json.loads(body)


@pytest.mark.parametrize("is_ssl", [True, False])
def test_a_refusal_is_problem_json_with_hsts_only_over_tls(is_ssl: bool) -> None:
    status_line, headers, problem = refuse(errors.LimitRequestLine(5000, 4094), is_ssl=is_ssl)
    assert status_line == "HTTP/1.1 414 Request-URI Too Long"
    assert headers["Content-Type"] == "application/problem+json"
    assert ("Strict-Transport-Security" in headers) is is_ssl
    assert problem["status"] == 414


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequestLine("GET /?token=do-not-log"), 400),
        # a 5xx, but the client's doing (a transfer coding we do not speak), not a failure of ours
        (errors.UnsupportedTransferCoding("do-not-log"), 501),
    ],
)
def test_a_refusal_of_the_request_is_a_warning_without_it(
    caplog: pytest.LogCaptureFixture, error: BaseException, status: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="eventsvc.tlsworker")
    refuse(error, is_ssl=True)
    records = [r for r in caplog.records if r.name == "eventsvc.tlsworker"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "request refused by the HTTP server")
    ]
    assert records[0].status == status  # type: ignore[attr-defined]
    assert records[0].reason == type(error).__name__  # type: ignore[attr-defined]
    assert "do-not-log" not in caplog.text


@pytest.mark.parametrize(
    "error", [errors.InvalidResponseHeader("x"), RuntimeError("a bug")], ids=["ours", "unexpected"]
)
def test_a_server_side_failure_is_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture, error: BaseException
) -> None:
    caplog.set_level(logging.DEBUG, logger="eventsvc.tlsworker")
    status_line, _, _ = refuse(error, is_ssl=True)
    assert status_line == "HTTP/1.1 500 Internal Server Error"
    records = [r for r in caplog.records if r.name == "eventsvc.tlsworker"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.ERROR, "the HTTP server failed on a request")
    ]
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error


def test_a_client_already_gone_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="eventsvc.tlsworker")
    worker = SimpleNamespace(cfg=SimpleNamespace(is_ssl=True))
    server_side, client_side = socket.socketpair()
    client_side.close()
    with server_side:
        ClientCertThreadWorker.handle_error(worker, None, server_side, None, errors.NoMoreData())
    messages = [r.getMessage() for r in caplog.records if r.name == "eventsvc.tlsworker"]
    assert messages[-1] == "could not send the refusal"

"""Error rendering: every server answer that is not success becomes one safe line, exit 1."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from click.testing import Result

from cli.cli_support import Pki, RunningServer, assert_one_error_line, server_context

Run = Callable[..., Result]
StartServer = Callable[..., RunningServer]
EVENT_ID = "65f000000000000000000000"


def test_problem_with_field_errors_is_one_compact_line(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    api.state.problem_override = (
        422,
        {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "invalid event",
            "errors": [
                {"field": "name", "message": "must not be empty"},
                {"field": "attributes.k", "message": "too long"},
            ],
        },
    )
    line = assert_one_error_line(run("start", "x", env=client_env))
    assert line == (
        "error: 422 Unprocessable Content: invalid event"
        " (name: must not be empty; attributes.k: too long)"
    )


def test_hostile_problem_text_stays_on_one_line(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    api.state.problem_override = (
        400,
        {"title": "Bad\nRequest", "status": 400, "detail": "x\x1b[31m\r\nerror: fake" + "y" * 5000},
    )
    line = assert_one_error_line(run("show", EVENT_ID, env=client_env))
    assert line.startswith("error: 400 Bad\\u000aRequest: x\\u001b[31m\\u000d\\u000aerror: fake")
    assert "\x1b" not in line
    assert len(line) < 1100


def _raw_app(status: str, headers: list[tuple[str, str]], body: bytes) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(status, headers)
        return [body]

    return app


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (
            "500 INTERNAL SERVER ERROR",
            [("Content-Type", "text/html")],
            b"<html>stack trace</html>",
            "error: 500 Internal Server Error",
        ),
        (
            "418 I'M A TEAPOT",
            [("Content-Type", "application/json")],
            b"[1, 2]",
            "error: 418 I'm a Teapot",
        ),
        (
            "302 FOUND",
            [("Location", "http://evil.example/steal")],
            b"",
            "error: 302 Found: the API does not redirect; check the url"
            " (server points to http://evil.example/steal)",
        ),
        (
            "200 OK",
            [("Content-Type", "text/plain")],
            b"not json",
            "error: unexpected response from server: 200 OK without a JSON object",
        ),
    ],
)
def test_non_problem_answers(
    run: Run,
    start_server: StartServer,
    pki: Pki,
    status: str,
    headers: list[tuple[str, str]],
    body: bytes,
    expected: str,
) -> None:
    server = start_server(server_context(pki.server), app=_raw_app(status, headers, body))
    env = {"EVENTSVC_URL": server.url, "EVENTSVC_CA_FILE": str(pki.ca)}
    assert assert_one_error_line(run("show", EVENT_ID, env=env)) == expected


def test_list_without_items_is_an_error_not_a_crash(
    run: Run, start_server: StartServer, pki: Pki
) -> None:
    app = _raw_app("200 OK", [("Content-Type", "application/json")], b'{"things": []}')
    server = start_server(server_context(pki.server), app=app)
    env = {"EVENTSVC_URL": server.url, "EVENTSVC_CA_FILE": str(pki.ca)}
    line = assert_one_error_line(run("list", env=env))
    assert line == "error: unexpected response from server: list has no 'items' array"


def test_a_cursor_loop_is_stopped(run: Run, start_server: StartServer, pki: Pki) -> None:
    app = _raw_app(
        "200 OK", [("Content-Type", "application/json")], b'{"items": [], "next": "same"}'
    )
    server = start_server(server_context(pki.server), app=app)
    env = {"EVENTSVC_URL": server.url, "EVENTSVC_CA_FILE": str(pki.ca)}
    line = assert_one_error_line(run("list", "--all", env=env))
    assert "same page cursor twice" in line

"""What the CLI sends and prints, checked on a recording stand-in API over HTTPS.

The real service is exercised in test_cli_real_api.py; the stand-in
(cli_fake_api.py) is kept because it records the exact requests (bodies,
query strings, Idempotency-Key) and can serve text the real API would refuse.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from cli.cli_support import RunningServer, assert_one_error_line

Run = Callable[..., Result]
MISSING_ID = "65f000000000000000000000"


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _start(run: Run, env: dict[str, str], *args: str) -> dict[str, Any]:
    event: dict[str, Any] = _json(run("start", *args, "--json", env=env))
    return event


def test_start_sends_utc_attributes_and_an_idempotency_key(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    event = _start(
        run, client_env, "deploy", "--at", "2026-11-26T02:00:00+01:00", "--attr", "env=prod"
    )
    assert event["name"] == "deploy"
    assert event["start_event"] == "2026-11-26T01:00:00Z"
    assert event["attributes"] == {"env": "prod"}
    assert event["stop_event"] is None
    post = [r for r in api.state.received if r.method == "POST"][-1]
    assert post.body == {
        "name": "deploy",
        "start_event": "2026-11-26T01:00:00Z",
        "attributes": {"env": "prod"},
    }
    assert uuid.UUID(post.headers["Idempotency-Key"]).version == 4


def test_each_start_uses_a_fresh_idempotency_key(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    first = _start(run, client_env, "a")
    second = _start(run, client_env, "a")
    assert first["id"] != second["id"]
    keys = {r.headers["Idempotency-Key"] for r in api.state.received if r.method == "POST"}
    assert len(keys) == 2


def test_start_without_at_lets_the_server_choose(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    _start(run, client_env, "build")
    assert api.state.received[-1].body == {"name": "build"}


def test_start_human_output_is_a_table(run: Run, client_env: dict[str, str]) -> None:
    result = run("start", "backup", "--attr", "host=db1", env=client_env)
    assert result.exit_code == 0, result.output
    assert "backup" in result.stdout
    assert "host=db1" in result.stdout
    assert "open" in result.stdout


def test_stop_at_and_stop_twice(run: Run, client_env: dict[str, str], api: RunningServer) -> None:
    created = _start(run, client_env, "job", "--at", "2026-01-01T00:00:00Z")
    stopped = _json(
        run("stop", created["id"], "--at", "2026-01-01T01:30:00-00:30", "--json", env=client_env)
    )
    assert stopped["stop_event"] == "2026-01-01T02:00:00Z"
    assert api.state.received[-1].body == {"stop_event": "2026-01-01T02:00:00Z"}
    again = run("stop", created["id"], env=client_env)
    line = assert_one_error_line(again)
    assert line == f"error: 409 Conflict: event {created['id']} is already stopped"


def test_stop_without_at_sends_an_empty_body(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    created = _start(run, client_env, "job")
    result = run("stop", created["id"], env=client_env)
    assert result.exit_code == 0, result.output
    assert api.state.received[-1].body == {}
    assert "open" not in result.stdout


def _seed(run: Run, env: dict[str, str], count: int) -> list[dict[str, Any]]:
    return [
        _start(run, env, f"job-{i}", "--at", f"2026-01-{i + 1:02d}T00:00:00Z") for i in range(count)
    ]


def test_list_all_follows_cursors(run: Run, client_env: dict[str, str], api: RunningServer) -> None:
    _seed(run, client_env, 5)
    page = _json(run("list", "--all", "--limit", "2", "--json", env=client_env))
    assert [e["name"] for e in page["items"]] == ["job-4", "job-3", "job-2", "job-1", "job-0"]
    assert page["next"] is None
    gets = [r.path for r in api.state.received if r.method == "GET"]
    assert len(gets) == 3
    assert "cursor=2" in gets[1]


def test_list_filters_are_sent_in_utc(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    _seed(run, client_env, 4)
    page = _json(
        run(
            "list",
            "--from",
            "2026-01-02T01:00:00+01:00",
            "--to",
            "2026-01-04T00:00:00Z",
            "--open",
            "--json",
            env=client_env,
        )
    )
    assert [e["name"] for e in page["items"]] == ["job-2", "job-1"]
    path = api.state.received[-1].path
    assert "from=2026-01-02T00%3A00%3A00Z" in path
    assert "status=open" in path


def test_list_human_and_more_hint(run: Run, client_env: dict[str, str]) -> None:
    _seed(run, client_env, 3)
    result = run("list", "--limit", "2", env=client_env)
    assert result.exit_code == 0
    assert "job-2" in result.stdout
    assert "job-0" not in result.stdout
    assert "more events exist" in result.stderr


def test_list_empty(run: Run, client_env: dict[str, str]) -> None:
    result = run("list", env=client_env)
    assert result.exit_code == 0
    assert result.stdout.strip() == "no events"


def test_open_and_stopped_together_is_a_usage_error(run: Run, client_env: dict[str, str]) -> None:
    assert run("list", "--open", "--stopped", env=client_env).exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["show", "not-an-id"],
        ["show", "../../admin/aaaaaaaaaaaaaa"],
        ["stop", MISSING_ID, "--at", "2026-01-01T00:00:00"],
        ["start", "x", "--at", "yesterday"],
        ["start", "x", "--attr", "novalue"],
        ["start", "x", "--attr", "k=1", "--attr", "k=2"],
        ["list", "--limit", "0"],
        ["list", "--bogus"],
        ["--timeout", "0", "list"],
    ],
)
def test_usage_errors_exit_2_without_contacting_the_server(
    run: Run, client_env: dict[str, str], api: RunningServer, args: list[str]
) -> None:
    result = run(*args, env=client_env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert api.state.received == []


def test_human_output_shows_hostile_names_literally(run: Run, client_env: dict[str, str]) -> None:
    created = _start(run, client_env, "[bold red]x\x1b[2J\u202eevil", "--attr", "k=\x07")
    result = run("show", created["id"], env=client_env)
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout
    assert "\u202e" not in result.stdout
    assert "\x07" not in result.stdout
    assert "[bold red]x\\u001b[2J\\u202eevil" in result.stdout
    listed = run("list", env=client_env)
    assert "\x1b" not in listed.stdout
    assert "[bold red]" in listed.stdout


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("eventsvc ")

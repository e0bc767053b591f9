"""``eventsvc token create|list|revoke`` against the real service (gunicorn + MongoDB, HTTPS)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from cli.cli_support import ServedApi, assert_one_error_line

Run = Callable[..., Result]
TOKEN = re.compile(r"evt_[A-Za-z0-9]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def env(api_server: ServedApi) -> dict[str, str]:
    return {
        "EVENTSVC_URL": api_server.base_url,
        "EVENTSVC_CA_FILE": str(api_server.ca_file),
        "EVENTSVC_TOKEN": api_server.token,
    }


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_create_shows_the_token_once_with_a_warning(run: Run, env: dict[str, str]) -> None:
    result = run("token", "create", "--owner", "ci reader", "--scope", "events:read", env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    shown = TOKEN.findall(result.stdout)
    assert len(shown) == 1
    assert "shown once" in result.stderr
    assert "ci reader" in result.stdout
    token_id = shown[0].split("_")[1]

    listed = run("token", "list", env=env)
    assert listed.exit_code == 0, listed.output
    assert token_id in listed.stdout
    assert shown[0] not in listed.output
    assert not TOKEN.search(listed.output)

    record = next(
        t for t in _json(run("token", "list", "--json", env=env))["items"] if t["id"] == token_id
    )
    assert record["owner"] == "ci reader"
    assert record["scopes"] == ["events:read"]
    assert record["revoked_at"] is None
    assert "token" not in record


def test_create_json_has_the_token_and_ttl(run: Run, env: dict[str, str]) -> None:
    created = _json(
        run(
            "token",
            "create",
            "--owner",
            "auditor",
            "--scope",
            "audit:read",
            "--scope",
            "events:read",
            "--ttl-days",
            "2",
            "--json",
            env=env,
        )
    )
    assert TOKEN.fullmatch(created["token"])
    assert created["scopes"] == ["audit:read", "events:read"]
    assert created["expires_at"] > created["created_at"]
    listing = run("token", "list", "--json", env=env)
    assert created["token"] not in listing.output


def test_revoked_token_gets_401_through_the_cli(run: Run, env: dict[str, str]) -> None:
    created = _json(
        run("token", "create", "--owner", "short", "--scope", "events:read", "--json", env=env)
    )
    as_new_token = {**env, "EVENTSVC_TOKEN": created["token"]}
    assert run("list", env=as_new_token).exit_code == 0

    revoked = run("token", "revoke", created["id"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.strip() == f"revoked token {created['id']}"
    again = _json(run("token", "revoke", created["id"], "--json", env=env))
    assert again["revoked_at"] is not None  # idempotent: still revoked, same record

    line = assert_one_error_line(run("list", env=as_new_token))
    assert line.startswith("error: 401 ")
    listed = _json(run("token", "list", "--json", env=env))["items"]
    assert next(t for t in listed if t["id"] == created["id"])["revoked_at"] is not None


def test_token_commands_need_tokens_admin(run: Run, env: dict[str, str]) -> None:
    reader = _json(
        run("token", "create", "--owner", "r", "--scope", "events:read", "--json", env=env)
    )
    line = assert_one_error_line(
        run("token", "list", env={**env, "EVENTSVC_TOKEN": reader["token"]})
    )
    assert line.startswith("error: 403 ")


def test_bad_input_is_refused(run: Run, env: dict[str, str]) -> None:
    line = assert_one_error_line(
        run("token", "create", "--owner", "x", "--scope", "events:nope", env=env)
    )
    assert line.startswith("error: 4")
    assert "scopes" in line

    missing = run("token", "revoke", "0123456789abcdef", env=env)
    assert assert_one_error_line(missing).startswith("error: 404 ")

    pasted = run("token", "revoke", env["EVENTSVC_TOKEN"], env=env)
    assert pasted.exit_code == 2
    assert env["EVENTSVC_TOKEN"] not in pasted.output
    assert run("token", "create", "--owner", "x", env=env).exit_code == 2  # no --scope
    assert (
        run(
            "token", "create", "--owner", "x", "--scope", "events:read", "--ttl-days", "0", env=env
        ).exit_code
        == 2
    )


def test_no_token_configured_is_one_line(run: Run, env: dict[str, str]) -> None:
    without = {key: value for key, value in env.items() if key != "EVENTSVC_TOKEN"}
    line = assert_one_error_line(run("token", "list", env=without))
    assert "no token configured" in line

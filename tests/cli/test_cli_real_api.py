"""Every command against the real service: gunicorn + Flask app + MongoDB, over HTTPS.

Uses ``api_server`` from tests/conftest.py (the production server process with
a throwaway CA and a token with every scope), ``make_token`` for narrower
tokens, and ``clean_db`` to start each test with no events.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from cli.cli_support import ServedApi, assert_one_error_line

Run = Callable[..., Result]
MISSING_ID = "65f000000000000000000000"


@pytest.fixture
def env(api_server: ServedApi, clean_db: None) -> dict[str, str]:
    return {
        "EVENTSVC_URL": api_server.base_url,
        "EVENTSVC_CA_FILE": str(api_server.ca_file),
        "EVENTSVC_TOKEN": api_server.token,
    }


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _start(run: Run, env: dict[str, str], *args: str) -> dict[str, Any]:
    event: dict[str, Any] = _json(run("start", *args, "--json", env=env))
    return event


def test_start_show_stop_delete(run: Run, env: dict[str, str]) -> None:
    created = _start(run, env, "deploy", "--at", "2026-11-26T02:00:00+01:00", "--attr", "env=prod")
    assert created["start_event"] == "2026-11-26T01:00:00.000Z"
    assert created["attributes"] == {"env": "prod"}
    assert created["stop_event"] is None
    assert _json(run("show", created["id"], "--json", env=env)) == created

    stopped = _json(run("stop", created["id"], "--at", "2026-11-26T01:30:00Z", "--json", env=env))
    assert stopped["stop_event"] == "2026-11-26T01:30:00.000Z"
    assert stopped["version"] == created["version"] + 1

    human = run("show", created["id"], env=env)
    assert human.exit_code == 0
    assert "2026-11-26T01:30:00.000Z" in human.stdout
    assert "env=prod" in human.stdout

    deleted = run("delete", created["id"], env=env)
    assert deleted.exit_code == 0
    assert deleted.stdout.strip() == f"deleted event {created['id']}"
    line = assert_one_error_line(run("show", created["id"], env=env))
    assert line == f"error: 404 Not Found: event {created['id']} does not exist"


def test_start_and_stop_default_to_the_server_clock(run: Run, env: dict[str, str]) -> None:
    created = _start(run, env, "now-ish")
    result = run("stop", created["id"], env=env)
    assert result.exit_code == 0, result.output
    shown = _json(run("show", created["id"], "--json", env=env))
    assert shown["stop_event"] >= shown["start_event"]


def test_two_starts_are_two_events(run: Run, env: dict[str, str]) -> None:
    """Each invocation sends a fresh Idempotency-Key, so nothing is merged."""
    first = _start(run, env, "same")
    second = _start(run, env, "same")
    assert first["id"] != second["id"]


def test_stop_twice_is_409_on_one_line(run: Run, env: dict[str, str]) -> None:
    created = _start(run, env, "job")
    assert run("stop", created["id"], env=env).exit_code == 0
    line = assert_one_error_line(run("stop", created["id"], env=env))
    assert line.startswith("error: 409 ")
    assert f"event {created['id']} is already stopped" in line


def test_stop_before_start_is_rejected(run: Run, env: dict[str, str]) -> None:
    created = _start(run, env, "job", "--at", "2026-01-02T00:00:00Z")
    line = assert_one_error_line(
        run("stop", created["id"], "--at", "2026-01-01T00:00:00Z", env=env)
    )
    assert line.startswith("error: 4")


def test_validation_errors_are_compact(run: Run, env: dict[str, str]) -> None:
    line = assert_one_error_line(run("start", "x", "--attr", "bad key=1", env=env))
    assert line.startswith("error: 4")
    assert "(attributes" in line


def test_list_filters_pages_and_all(run: Run, env: dict[str, str]) -> None:
    events = [_start(run, env, f"e{i}", "--at", f"2026-01-{i + 1:02d}T00:00:00Z") for i in range(5)]
    run("stop", events[0]["id"], env=env)

    page = _json(run("list", "--limit", "2", "--json", env=env))
    assert [e["name"] for e in page["items"]] == ["e4", "e3"]
    assert page["next"]

    everything = _json(run("list", "--limit", "2", "--all", "--json", env=env))
    assert [e["name"] for e in everything["items"]] == ["e4", "e3", "e2", "e1", "e0"]
    assert everything["next"] is None

    window = _json(
        run(
            "list",
            "--from",
            "2026-01-02T01:00:00+01:00",
            "--to",
            "2026-01-04T00:00:00Z",
            "--json",
            env=env,
        )
    )
    assert [e["name"] for e in window["items"]] == ["e2", "e1"]

    stopped = _json(run("list", "--stopped", "--json", env=env))
    assert [e["id"] for e in stopped["items"]] == [events[0]["id"]]
    running = _json(run("list", "--open", "--name", "e1", "--json", env=env))
    assert [e["id"] for e in running["items"]] == [events[1]["id"]]

    human = run("list", env=env)
    assert human.exit_code == 0
    assert all(e["id"] in human.stdout for e in events)
    assert "2026-01-05T00:00:00Z" in human.stdout


def test_missing_event_is_404(run: Run, env: dict[str, str]) -> None:
    for command in ("show", "stop", "delete"):
        line = assert_one_error_line(run(command, MISSING_ID, env=env))
        assert line == f"error: 404 Not Found: event {MISSING_ID} does not exist"


def test_other_ca_is_refused_by_the_real_server(
    run: Run, api_server: ServedApi, tmp_path: Path
) -> None:
    from support import write_test_pki

    other_ca, _, _ = write_test_pki(tmp_path / "other")
    env = {"EVENTSVC_URL": api_server.base_url, "EVENTSVC_CA_FILE": str(other_ca)}
    line = assert_one_error_line(run("list", env=env))
    assert "certificate verify failed" in line


def test_without_a_token_is_401_with_a_hint(run: Run, env: dict[str, str]) -> None:
    anonymous = {key: value for key, value in env.items() if key != "EVENTSVC_TOKEN"}
    line = assert_one_error_line(run("list", env=anonymous))
    assert line.startswith("error: 401 ")
    assert line.endswith("set EVENTSVC_TOKEN or token in the config file (mode 0600)")


def test_token_without_the_scope_is_403_and_never_printed(
    run: Run, env: dict[str, str], make_token: Callable[..., str]
) -> None:
    reader = make_token("events:read")
    result = run("start", "x", env={**env, "EVENTSVC_TOKEN": reader})
    line = assert_one_error_line(result)
    assert line.startswith("error: 403 ")
    assert reader not in result.output
    listed = run("list", "--json", env={**env, "EVENTSVC_TOKEN": reader})
    assert listed.exit_code == 0, listed.output


def test_token_from_a_0600_config_file(
    run: Run, api_server: ServedApi, clean_db: None, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.touch(mode=0o600)
    config_file.write_text(
        f'url = "{api_server.base_url}"\nca_file = "{api_server.ca_file}"\n'
        f'token = "{api_server.token}"\n'
    )
    result = run("--config", str(config_file), "start", "from-config", "--json")
    assert result.exit_code == 0, result.output
    assert api_server.token not in result.output


def test_one_trace_id_follows_a_cli_run_into_the_server_log(
    run: Run, env: dict[str, str], api_server: ServedApi
) -> None:
    """The CLI starts a trace; its id ends the error line and tags the server's log lines."""
    result = run("show", MISSING_ID, env=env)
    trace_id = re.search(r"\(trace ([0-9a-f]{32})\)$", result.stderr.strip())
    assert trace_id is not None, result.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = [
            json.loads(line)
            for line in api_server.log_file.read_text().splitlines()  # type: ignore[attr-defined]
            if trace_id.group(1) in line
        ]
        if records:
            break
        time.sleep(0.1)
    assert any(
        record.get("logger") == "eventsvc.access" and record.get("status") == 404
        for record in records
    ), records

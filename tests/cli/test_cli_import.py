"""``eventsvc import FILE`` against the real service (gunicorn, HTTPS, MongoDB)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from cli.cli_support import ServedApi, assert_one_error_line
from eventsvc.cli.importer import MAX_BATCH_BYTES, read_batches

Run = Callable[..., Result]


@pytest.fixture
def env(api_server: ServedApi, clean_db: None) -> dict[str, str]:
    return {
        "EVENTSVC_URL": api_server.base_url,
        "EVENTSVC_CA_FILE": str(api_server.ca_file),
        "EVENTSVC_TOKEN": api_server.token,
    }


def write(path: Path, *events: dict[str, Any] | str) -> Path:
    lines = [event if isinstance(event, str) else json.dumps(event) for event in events]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def listed(run: Run, env: dict[str, str]) -> list[dict[str, Any]]:
    result = run("list", "--all", "--json", env=env)
    assert result.exit_code == 0, result.output
    events: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return events


def test_import_sends_batches_and_a_rerun_replays(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    events = [
        {"name": f"imported {n}", "attributes": {"n": str(n)}, "idempotency_key": f"import-{n:05d}"}
        for n in range(150)
    ]
    file = write(tmp_path / "events.jsonl", *events[:75], "", *events[75:])
    assert [len(batch.events) for batch in read_batches(file)] == [100, 50]
    first = run("import", str(file), env=env)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "imported 150 events: 150 created, 0 replayed"
    again = run("import", str(file), env=env)
    assert again.stdout.strip() == "imported 150 events: 0 created, 150 replayed"
    assert sorted(event["name"] for event in listed(run, env)) == sorted(e["name"] for e in events)


def test_a_malformed_line_stops_the_import_before_anything_is_sent(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    for bad, message in (
        ("{not json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: not a JSON object"),
        ('{"name": "x", "owner": "me"}', "line 2: unknown field(s) owner"),
        ('{"start_event": "2026-01-01T00:00:00Z"}', "line 2: an event needs a name"),
        (json.dumps({"name": "x" * MAX_BATCH_BYTES}), "larger than"),
    ):
        file = write(tmp_path / "bad.jsonl", {"name": "fine"}, bad)
        result = run("import", str(file), env=env)
        assert result.exit_code == 2, result.output
        assert message in result.stderr
        assert "Traceback" not in result.output
    empty = write(tmp_path / "empty.jsonl", "")
    assert "holds no events" in run("import", str(empty), env=env).stderr
    assert listed(run, env) == []


def test_a_batch_the_server_refuses_names_its_lines_and_what_was_imported(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    events: list[dict[str, Any] | str] = [{"name": f"ok {n}"} for n in range(100)]
    events.append({"name": "bad", "start_event": "yesterday"})  # line 101: the second batch
    file = write(tmp_path / "events.jsonl", *events)
    line = assert_one_error_line(run("import", str(file), env=env))
    assert line.startswith("error: lines 101-101: 422")
    assert "lines up to 100 were imported (100 events)" in line
    assert len(listed(run, env)) == 100
    only_bad = write(tmp_path / "bad.jsonl", {"name": "bad", "start_event": "yesterday"})
    assert "nothing was imported" in assert_one_error_line(run("import", str(only_bad), env=env))


def test_an_unreadable_file_is_one_line(run: Run, env: dict[str, str], tmp_path: Path) -> None:
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    result = run("import", str(binary), env=env)
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr
    missing = run("import", str(tmp_path / "missing.jsonl"), env=env)
    assert missing.exit_code == 2

"""The lease keeper's Vault status file: what it holds, its mode, what a reader makes of it."""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import pytest

from eventsvc.vault.errors import VaultError
from eventsvc.vault.status import OK, STATUS_FILE_NAME, StatusFile, read_status

# A fresh Vault-shaped token per run: nothing token-like is committed.
TOKEN_LIKE = "hvs." + secrets.token_urlsafe(24)


def test_no_file_means_no_failure_yet(tmp_path: Path) -> None:
    assert read_status(tmp_path / STATUS_FILE_NAME) == OK


def test_unreachable_then_ok_round_trip_holds_a_class_name_only(tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE_NAME
    status = StatusFile(path)
    status.succeeded()
    assert not path.exists(), "nothing to say while Vault answers"
    status.failed(VaultError(f"Vault at https://127.0.0.1:1/v1/x?token={TOKEN_LIKE}: timed out"))
    written = path.read_text(encoding="utf-8")
    assert TOKEN_LIKE not in written
    assert "127.0.0.1" not in written
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = json.loads(written)
    assert found["vault"] == "unreachable"
    assert found["last_error"] == "VaultError"
    first = read_status(path)
    assert first is not None
    assert not first.reachable
    assert first.since is not None
    assert first.last_error == "VaultError"
    status.failed(OSError("again"))
    again = read_status(path)
    assert again is not None
    assert again.since == first.since, "since is the first failure, not the latest"
    assert again.last_error == "OSError"
    status.succeeded()
    assert read_status(path) == OK
    assert json.loads(path.read_text(encoding="utf-8")) == {"vault": "ok"}
    assert [entry.name for entry in tmp_path.iterdir()] == [STATUS_FILE_NAME], "a temporary left"


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"vault": "maybe"}'],
)
def test_a_file_that_cannot_be_understood_is_unknown(tmp_path: Path, content: str) -> None:
    path = tmp_path / STATUS_FILE_NAME
    path.write_text(content, encoding="utf-8")
    assert read_status(path) is None


def test_a_bad_since_is_kept_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / STATUS_FILE_NAME
    path.write_text('{"vault": "unreachable", "since": "yesterday"}', encoding="utf-8")
    found = read_status(path)
    assert found is not None
    assert (found.reachable, found.since, found.last_error) == (False, None, None)


def test_a_failed_write_is_logged_and_retried_on_the_next_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone" / STATUS_FILE_NAME
    status = StatusFile(path)
    status.failed(OSError("x"))
    assert "could not write vault-status" in caplog.text
    assert not path.exists()
    path.parent.mkdir(mode=0o700)
    status.failed(OSError("x"))
    found = read_status(path)
    assert found is not None
    assert not found.reachable

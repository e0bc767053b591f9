"""The one private-file writer: mode 0600, atomic replacement, no leftovers, no links followed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventsvc.files import write_private_file


def test_text_is_written_0600_even_over_a_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, "new key\n")
    assert target.read_text() == "new key\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["key.pem"]


def test_chunks_of_bytes_are_written_in_order(tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    write_private_file(target, iter([b'{"a":1}\n', b'{"b":2}\n']))
    assert target.read_bytes() == b'{"a":1}\n{"b":2}\n'


def test_a_failure_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    target.write_bytes(b"previous\n")

    def broken() -> Iterator[bytes]:
        yield b"half of it\n"
        raise ConnectionError("the network broke off")

    with pytest.raises(ConnectionError):
        write_private_file(target, broken())
    assert target.read_bytes() == b"previous\n"
    assert [path.name for path in tmp_path.iterdir()] == ["export.jsonl"]


def test_a_symlink_target_is_refused_and_its_destination_untouched(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours")
    link = tmp_path / "key.pem"
    link.symlink_to(elsewhere)
    with pytest.raises(OSError, match="symbolic link"):
        write_private_file(link, "secret")
    assert elsewhere.read_text() == "not yours"
    assert link.is_symlink()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["elsewhere", "key.pem"]


def test_a_missing_directory_is_an_os_error_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_private_file(tmp_path / "missing" / "key.pem", "secret")
    assert list(tmp_path.iterdir()) == []


def test_the_umask_cannot_widen_the_mode(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        write_private_file(tmp_path / "key.pem", "secret")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600

"""A bare clone works anywhere: nothing refers to a place that only our build machines have.

The lock files once carried this machine's pip configuration (a local wheel
folder and file:// indexes), and the SCA code and tests once read advisory data
beside the checkout. These tests fail if either comes back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCKS = sorted((REPO / "requirements").glob("*.txt"))
# Spelled in two parts so that this file does not contain what it looks for.
OUTSIDE_PATHS = ("..", "/shared"), ("/wo", "rk/")

# pip options that point at an index or a folder, and anything local.
_NOT_PORTABLE = re.compile(
    r"(^|\s)(--extra-index-url|--index-url|-i|--find-links|-f|--trusted-host)(\s|=|$)"
    r"|file:|(^|\s)(/|\./|\.\./|~)"
)


def test_there_are_lock_files() -> None:
    assert {p.name for p in LOCKS} >= {"pip.txt", "runtime.txt", "dev.txt", "scan.txt"}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_lock_file_names_no_index_folder_or_local_path(lock: Path) -> None:
    offending = [
        f"{lock.name}:{number}: {line}"
        for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), 1)
        if not line.lstrip().startswith("#") and _NOT_PORTABLE.search(line)
    ]
    assert not offending, "regenerate with --no-emit-index-url --no-emit-find-links"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_pin_keeps_its_hashes(lock: Path) -> None:
    text = lock.read_text(encoding="utf-8")
    pins = re.findall(
        r"^([A-Za-z0-9][A-Za-z0-9._\[\],-]*)==\S+ \\\n((?:\s+--hash=\S+.*\n)+)", text, re.M
    )
    count = sum(1 for line in text.splitlines() if re.match(r"^[A-Za-z0-9][^ ]*==", line))
    assert pins
    assert len(pins) == count


@pytest.mark.parametrize(
    "lock", [p for p in LOCKS if "pip-compile" in p.read_text("utf-8")], ids=lambda p: p.name
)
def test_regenerate_command_omits_index_and_find_links(lock: Path) -> None:
    command = next(
        line for line in lock.read_text("utf-8").splitlines() if line.startswith("#    pip-compile")
    )
    assert "--no-emit-index-url" in command
    assert "--no-emit-find-links" in command
    assert f"--output-file=requirements/{lock.name}" in command


def test_lock_checker_catches_what_the_machine_config_adds() -> None:
    for line in (
        "--extra-index-url file:///opt/pypi/simple",
        "--find-links /opt/wheels",
        "-i https://mirror.example/simple",
        "--index-url=https://mirror.example/simple",
        "demo @ file:///tmp/demo.whl",
        "./local-package",
    ):
        assert _NOT_PORTABLE.search(line), line
    assert not _NOT_PORTABLE.search("flask==3.1.2 \\")
    assert not _NOT_PORTABLE.search("    --hash=sha256:ab")


def _files(top: str) -> list[Path]:
    return [
        path
        for path in sorted((REPO / top).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]


@pytest.mark.parametrize("top", ["src", "tests"])
def test_no_file_refers_to_a_path_outside_the_checkout(top: str) -> None:
    """Data beside the checkout is named by the user (SECGATE_ADVISORY_DB), never in code."""
    needles = [(a + b).encode() for a, b in OUTSIDE_PATHS]
    offending = [
        f"{path.relative_to(REPO)}: {needle.decode()}"
        for path in _files(top)
        for needle in needles
        if needle in path.read_bytes()
    ]
    assert _files(top)
    assert not offending

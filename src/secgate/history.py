"""Which lines each commit added: the part of git history a tree scan cannot see.

A secret committed and deleted in the next commit is gone from the tree but
not from the repository: anyone with a clone has it. The secrets stage scans
the lines that the commits not yet on the main branch added (or every commit,
on request); this module turns ``git log --cc -U0`` output into those lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from secgate import git

DEFAULT_BASES = ("origin/main", "main")


@dataclass(frozen=True)
class Range:
    """The commits to scan, as ``git rev-list`` arguments, and how to describe them."""

    revisions: list[str]
    description: str  # e.g. "origin/main..HEAD"


@dataclass
class Added:
    """The lines one commit added to one file (no context, no removed lines)."""

    commit: str
    path: str
    lines: list[str] = field(default_factory=list)


class HistoryUnavailable(RuntimeError):
    """The history asked for cannot be read completely (shallow clone, unknown ref)."""


def commit_range(root: Path, base: str | None, whole: bool) -> tuple[Range, list[str]]:
    """The commits to scan and notes saying what was chosen.

    ``whole``: everything reachable from HEAD. Otherwise ``base..HEAD``; without
    a ``base``, the first of origin/main, main that exists, and the whole history
    when neither does (a repository without a main branch has no "already
    reviewed" part). A ``base`` that does not exist raises, and so does a shallow
    clone unless every commit to scan is there: scanning part of what was asked
    for must not look like scanning all of it.
    """
    chosen, notes = _choose(root, base, whole)
    shallow = git.shallow_boundary(root)
    if shallow and (
        chosen.revisions == ["HEAD"] or shallow & git.list_commits(root, chosen.revisions)
    ):
        raise HistoryUnavailable(
            f"shallow clone: the commits of {chosen.description} are not all here; fetch the "
            "whole history (git fetch --unshallow; actions/checkout with fetch-depth: 0)"
        )
    return chosen, notes


def _choose(root: Path, base: str | None, whole: bool) -> tuple[Range, list[str]]:
    if whole:
        return Range(["HEAD"], "the whole history of HEAD"), []
    if base is not None:
        if not git.resolves(root, base):
            raise HistoryUnavailable(f"secrets_base={base!r} is not a commit in this repository")
        return Range([f"{base}..HEAD"], f"{base}..HEAD"), []
    for candidate in DEFAULT_BASES:
        if git.resolves(root, candidate):
            return Range([f"{candidate}..HEAD"], f"{candidate}..HEAD"), []
    note = "secrets history: no origin/main or main branch, so the whole history was scanned"
    return Range(["HEAD"], "the whole history of HEAD"), [note]


def added_lines(patches: bytes) -> list[Added]:
    """Parse ``git log --format=%x00%H --cc -U0`` output into what each commit added.

    Newest commit first, as git log prints them. In a hunk a line is added when
    every parent column says ``+`` (one column for a commit, one per parent for
    a merge's combined diff: a line new to all parents is the merge's own).
    """
    result: list[Added] = []
    commit = ""
    current: Added | None = None
    columns = 1
    in_hunk = False
    for raw in patches.split(b"\n"):
        line = raw.decode("utf-8", errors="replace")
        if line.startswith("\0"):
            commit, current, in_hunk = line[1:].strip(), None, False
        elif line.startswith("@@"):
            columns = len(line) - len(line.lstrip("@")) - 1
            in_hunk = True
        elif in_hunk and line[:1] in ("+", "-", " ", "\\"):
            if current is not None and line[:columns] == "+" * columns:
                current.lines.append(line[columns:])
        elif line.startswith("+++ "):
            current = _start_file(result, commit, line[4:])
            in_hunk = False
        elif line.startswith("diff "):
            current, in_hunk = None, False
    return [added for added in result if added.lines]


def _start_file(result: list[Added], commit: str, target: str) -> Added | None:
    """The record for the file a ``+++ b/path`` header names (None for /dev/null)."""
    path = _unquote(target)
    if path == "/dev/null" or not path.startswith("b/"):
        return None
    added = Added(commit=commit, path=path[2:])
    result.append(added)
    return added


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual file names (``"a\\tb"``, octal escapes)."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    raw = _ESCAPE.sub(_unescape, path[1:-1].encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


_ESCAPE = re.compile(rb"\\([0-7]{3}|.)")
_SIMPLE_ESCAPES = {
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
}


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if len(code) == 3:
        return bytes([int(code, 8)])
    return _SIMPLE_ESCAPES.get(code, code)

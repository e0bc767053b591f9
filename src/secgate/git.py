"""What secgate asks git: which commit this is, which files could be committed, and history.

``commit`` and ``committable_files`` answer "unknown"/``None`` outside a git
checkout (fixture copies, tarballs) instead of failing: callers fall back to
something that still works. The history questions (``resolves``,
``shallow_boundary``, ``log_patches``...) are asked only once ``is_checkout``
said yes; they raise GitFailed when git cannot answer.
"""

from __future__ import annotations

import shutil
import subprocess  # git is run with fixed argument lists, never through a shell
from pathlib import Path

TIMEOUT_SECONDS = 300


class GitFailed(RuntimeError):
    """git ran in a checkout but could not answer (a bad ref, a broken repository)."""


def _run(root: Path, *args: str) -> bytes:
    """git's stdout as bytes; GitFailed with its stderr when it fails or is missing."""
    git = shutil.which("git")
    if git is None:
        raise GitFailed("git is not installed")
    try:
        done = subprocess.run(  # fixed argv, no shell (S603: reviewed in pyproject.toml)
            [git, "-C", str(root), *args],
            capture_output=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitFailed(f"git {args[0]}: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", errors="replace").strip()
        raise GitFailed(f"git {args[0]} exited {done.returncode}: {message[-500:]}")
    return done.stdout


def _git(root: Path, *args: str) -> str | None:
    """git's stdout as text, or None when it fails (not a checkout, no git)."""
    try:
        return _run(root, *args).decode("utf-8", errors="replace")
    except GitFailed:
        return None


def commit(root: Path) -> str:
    """Full hash of HEAD in ``root`` ("unknown" outside a git checkout)."""
    out = _git(root, "rev-parse", "HEAD")
    return out.strip() if out and out.strip() else "unknown"


def committable_files(root: Path) -> list[str] | None:
    """Tracked files plus untracked ones .gitignore does not exclude, relative to ``root``.

    That is everything that is, or could by ``git add .`` become, part of the
    repository. ``None`` when ``root`` is not in a git checkout.
    """
    out = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if out is None:
        return None
    names = sorted({name for name in out.split("\0") if name})
    return [name for name in names if (root / name).is_file()]


def is_checkout(root: Path) -> bool:
    """True when ``root`` is the top of a git work tree (a fixture copy inside one is not)."""
    out = _git(root, "rev-parse", "--show-toplevel")
    return out is not None and Path(out.strip()).resolve() == root.resolve()


def resolves(root: Path, ref: str) -> bool:
    """True when ``ref`` names a commit in ``root``'s repository."""
    if ref.startswith("-"):  # an option, not a ref
        return False
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is not None


def shallow_boundary(root: Path) -> set[str]:
    """The commits whose parents a shallow clone lacks (empty for a full clone).

    A range that contains none of them is complete even in a shallow clone.
    """
    out = _run(root, "rev-parse", "--git-path", "shallow").decode("utf-8").strip()
    path = Path(out) if Path(out).is_absolute() else root / out
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def list_commits(root: Path, revisions: list[str]) -> set[str]:
    """The hashes ``git rev-list REVISIONS`` lists."""
    out = _run(root, "rev-list", *revisions, "--").decode("utf-8")
    return {line.strip() for line in out.splitlines() if line.strip()}


def count_commits(root: Path, revisions: list[str]) -> int:
    """How many commits ``git rev-list REVISIONS`` lists."""
    return int(_run(root, "rev-list", "--count", *revisions, "--").strip() or b"0")


def log_patches(root: Path, revisions: list[str]) -> bytes:
    """``git log`` of ``revisions`` with each commit's patch: a NUL + hash line, then its diff.

    No context lines (only what changed), no external diff or textconv drivers
    (they would run configured programs), paths unquoted where git allows.
    Merges show a dense combined diff: only what the merge itself introduced.
    """
    return _run(
        root,
        "-c",
        "core.quotePath=false",
        "log",
        "--format=%x00%H",
        "--cc",
        "--unified=0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--find-renames",
        *revisions,
        "--",
    )

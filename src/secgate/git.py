"""What secgate asks git: which commit this is, which files could be committed, and history.

``commit`` and ``committable_files`` answer "unknown"/``None`` outside a git
checkout (fixture copies, tarballs) instead of failing: callers fall back to
something that still works; so do ``resolve``, ``show``, ``list_files`` and
``uncommitted`` (the gate's configuration at the base branch, the tree's state).
The history questions (``resolves``, ``shallow_boundary``, ``log_patches``...)
are asked only once ``is_checkout`` said yes; they raise GitFailed when git
cannot answer.
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


def resolve(root: Path, ref: str) -> str | None:
    """Full commit hash of ``ref`` (a branch, tag or hash); ``None`` when git does not know it."""
    if ref.startswith("-"):  # never let a ref be read as an option
        return None
    out = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return out.strip() if out and out.strip() else None


def show(root: Path, commit_hash: str, path: str) -> str | None:
    """The text of ``path`` at ``commit_hash``; ``None`` when it did not exist there."""
    return _git(root, "show", f"{commit_hash}:{path}")


def list_files(root: Path, commit_hash: str, folder: str) -> list[str]:
    """Paths of the files under ``folder`` at ``commit_hash`` (empty when there are none)."""
    out = _git(root, "ls-tree", "-r", "-z", "--name-only", commit_hash, "--", folder)
    return sorted(name for name in (out or "").split("\0") if name)


def uncommitted(root: Path) -> list[str] | None:
    """Paths with uncommitted changes (staged, unstaged or untracked and not ignored)."""
    out = _git(root, "status", "--porcelain", "-z", "--untracked-files=normal")
    if out is None:
        return None
    # "XY path" entries; a rename's source path follows as an entry without the "XY " prefix.
    return sorted({entry[3:] for entry in out.split("\0") if len(entry) > 3 and entry[2] == " "})


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

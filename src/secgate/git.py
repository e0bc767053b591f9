"""The questions secgate asks git: which commit is this, which files could be committed,
and what a file looked like at another commit (the gate's configuration on the base branch).

All answer ``None``/"unknown" outside a git checkout (fixture copies, tarballs)
instead of failing: callers fall back to something that still works.
"""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - git is run with fixed argument lists
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603  # nosec B603 - fixed argv, no shell
            [git, "-C", str(root), *args],
            capture_output=True,
            encoding="utf-8",
            errors="replace",  # a binary file must not crash a comparison
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


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

"""The two questions secgate asks git: which commit is this, which files could be committed.

Both answer ``None``/"unknown" outside a git checkout (fixture copies, tarballs)
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
            text=True,
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

"""Helpers for the secgate tests: real scanners on copies of fixture projects.

Fixture projects are copied to a temporary directory before scanning: semgrep's
default ignore list skips anything under ``tests/``, and scanning a copy keeps
report files out of the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from secgate.model import ScanContext

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECURITY = REPO / "security"
TOOLS_BIN = REPO / ".venv-scan" / "bin"


def copy_fixture(name: str, destination: Path) -> Path:
    """A scannable copy of ``fixtures/<name>`` under ``destination``."""
    root = destination / name
    shutil.copytree(FIXTURES / name, root)
    return root


def context(root: Path, report_dir: Path) -> ScanContext:
    report_dir.mkdir(parents=True, exist_ok=True)
    return ScanContext(root=root, report_dir=report_dir, security_dir=SECURITY, tools_bin=TOOLS_BIN)


def flaw_lines(root: Path) -> dict[tuple[str, int], str]:
    """{(path, line): rule} for every line marked ``# FLAW: <rule>`` in a fixture."""
    marks = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "# FLAW: " in line:
                rule = line.split("# FLAW: ", 1)[1].strip()
                marks[(path.relative_to(root).as_posix(), number)] = rule
    return marks


# git for the tests' throwaway repositories: a fixed identity, no user or system config.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin",
}


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (a test repository) and return its stdout."""
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, env=GIT_ENV
    )
    return done.stdout

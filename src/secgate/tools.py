"""Running scanner executables as subprocesses.

Every tool call in secgate goes through :func:`run_tool`, so there is one place
that decides how a scanner is found (``ScanContext.tools_bin``), which
environment it sees, and what "the tool is missing" looks like.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import subprocess  # scanners are run as argument lists, never through a shell
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from secgate.model import ScanContext

logger = logging.getLogger(__name__)
progress = logging.getLogger("secgate.progress")

DEFAULT_TIMEOUT_SECONDS = 600


class ToolMissing(RuntimeError):
    """The scanner executable is not installed where the context says it is."""


class ToolFailed(RuntimeError):
    """The scanner ran but exited in a way that means it did not finish its job."""


@dataclass(frozen=True)
class ToolRun:
    """Outcome of one scanner invocation."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def tool_path(ctx: ScanContext, name: str) -> Path:
    """Absolute path of a scanner in ``ctx.tools_bin``; raise ToolMissing if absent."""
    path = (ctx.tools_bin / name).absolute()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ToolMissing(f"{name} not found in {ctx.tools_bin} (install requirements/scan.txt)")
    return path


def run_tool(
    ctx: ScanContext,
    name: str,
    args: Sequence[str],
    *,
    ok_codes: Sequence[int] = (0,),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: int = DEFAULT_TIMEOUT_SECONDS,
) -> ToolRun:
    """Run ``name args...`` from ``ctx.tools_bin`` and return its output.

    Exit codes outside ``ok_codes`` raise ToolFailed with the tail of stderr:
    most scanners use exit 1 for "found something", so each stage says which
    codes mean "finished".
    """
    argv = [str(tool_path(ctx, name)), *args]
    full_env = {**os.environ, **(env or {})}
    # The scan venv's bin first, so tools that spawn helpers find their siblings.
    full_env["PATH"] = f"{ctx.tools_bin.absolute()}{os.pathsep}{full_env.get('PATH', '')}"
    logger.debug("running %s", argv)
    started = time.monotonic()
    try:
        completed = subprocess.run(  # fixed argv, no shell
            argv,
            cwd=cwd or ctx.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{name} timed out after {timeout}s") from exc
    seconds = time.monotonic() - started
    progress.info("  %s: %.1f s (exit %d)", name, seconds, completed.returncode)
    if completed.returncode not in ok_codes:
        tail = (completed.stderr or completed.stdout).strip()[-2000:]
        raise ToolFailed(f"{name} exited {completed.returncode}: {tail}")
    return ToolRun(argv, completed.returncode, completed.stdout, completed.stderr, seconds)


def tool_version(ctx: ScanContext, name: str, args: Sequence[str] = ("--version",)) -> str:
    """First line of ``name --version`` (best effort: "unknown" if it cannot tell)."""
    try:
        run = run_tool(ctx, name, args, ok_codes=(0, 1, 2), timeout=60)
    except (ToolMissing, ToolFailed):
        return "unknown"
    lines = (run.stdout or run.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def installed_version(ctx: ScanContext, distribution: str, name: str) -> str:
    """Version of a Python scanner from its installed metadata in the tools' venv.

    Reading ``<venv>/lib/python*/site-packages/<dist>.dist-info`` costs nothing,
    where ``check-jsonschema --version`` spends about 2 s of CPU importing what
    it never uses for that answer. Falls back to ``name --version`` outside a venv.
    """
    venv = ctx.tools_bin.absolute().parent
    for site in sorted(venv.glob("lib/python*/site-packages")):
        for found in importlib.metadata.distributions(name=distribution, path=[str(site)]):
            return found.version
    return tool_version(ctx, name)


def failure_summary(exc: Exception) -> str:
    """First and last line of a tool failure: what failed, and the error it died with."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"

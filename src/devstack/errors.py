"""How the dev stack says that something did not start: one line, naming the log to read.

A developer running ``make up`` sees exactly one line on failure (what failed,
why, which log), never a traceback; these helpers keep that line short.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path


class StackError(RuntimeError):
    """A component did not start. The message is one line: what failed, why, which log."""

    def __init__(self, component: str, reason: str, log_file: Path | None) -> None:
        self.component = component
        self.log_file = log_file
        where = f"; log: {log_file}" if log_file is not None else ""
        super().__init__(f"{component} failed: {first_line(reason)}{where}")


def first_line(text: str) -> str:
    """The first non-blank line of a reason (tools often add pages of context after it)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"


def last_line(path: Path) -> str:
    """The last non-blank line of a log: usually the error a process died with."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in deque(handle, maxlen=20) if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"

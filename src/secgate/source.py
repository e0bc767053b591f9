"""Reading the code a finding points at, and turning it into stable fingerprints.

Fingerprints hash the rule, the file and the *normalised* code of the match,
never its line number: adding a line above a waived finding must not
invalidate its waiver.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

from secgate.model import Finding, fingerprint

MAX_SNIPPET_LINES = 20
_WHITESPACE = re.compile(r"\s+")


def normalise(code: str) -> str:
    """Collapse every run of whitespace so re-indentation keeps the fingerprint."""
    return _WHITESPACE.sub(" ", code).strip()


def read_lines(root: Path, path: str, first: int, last: int) -> str:
    """Lines ``first..last`` (1-based, inclusive) of a file, or "" if unreadable."""
    try:
        text = (root / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = text.splitlines()
    last = min(last, first + MAX_SNIPPET_LINES - 1)
    return "\n".join(lines[max(first - 1, 0) : last])


def read_span(root: Path, path: str, start: int, end: int) -> str:
    """Characters ``start..end`` (offsets) of a file, or "" if unreadable."""
    try:
        data = (root / path).read_bytes()
    except OSError:
        return ""
    return data[start:end].decode("utf-8", errors="replace")


def code_fingerprint(tool: str, rule_id: str, path: str, code: str) -> str:
    """Fingerprint of a code finding: tool, rule, file and normalised snippet."""
    return fingerprint(tool, rule_id, path, normalise(code))


def unique_fingerprints(findings: list[Finding]) -> list[Finding]:
    """Give the 2nd, 3rd ... identical match in a file its own fingerprint.

    Two identical calls in one file would otherwise share a fingerprint, so one
    waiver would silently cover both and SARIF consumers would merge them.
    Occurrences are numbered in file order, which survives line shifts.
    """
    ordered = sorted(findings, key=lambda f: (f.path or f.location, f.line or 0, f.rule_id))
    seen: Counter[str] = Counter()
    unique: list[Finding] = []
    for finding in ordered:
        seen[finding.fingerprint] += 1
        occurrence = seen[finding.fingerprint]
        if occurrence > 1:
            finding = dataclasses.replace(
                finding, fingerprint=fingerprint(finding.fingerprint, str(occurrence))
            )
        unique.append(finding)
    return unique

"""Inline scanner suppressions are findings: waivers.yml is the only place to accept risk.

A comment such as bandit's ``nosec`` or detect-secrets' allowlist pragma
silences a scanner with no owner, reason or expiry, and nobody reviews it as
risk. Some scanners can be told to ignore them (bandit ``--ignore-nosec``,
semgrep ``--disable-nosem``, zizmor ``--no-ignores``); detect-secrets, ruff
and hadolint cannot, and a reader cannot tell which. So every such comment,
and every ignore file a scanner reads, is reported wherever it is committed.

Not suppressions, so not reported: coverage's ``pragma: no cover``, mypy's
``type: ignore``, and ruff/flake8 ``noqa`` for codes outside the S
(flake8-bandit) family, e.g. ``noqa: E501``. A bare ``noqa`` silences the S
rules too, so it is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from secgate.model import Confidence, Finding, Severity
from secgate.source import code_fingerprint

TOOL = "secgate-suppressions"
OWASP = "A05:2021-Security Misconfiguration"
MAX_BYTES = 2 * 1024 * 1024
FIX = (
    "Remove the inline suppression. A false positive: waive the finding in "
    "security/waivers.yml (owner, reason, expiry) or, for detect-secrets, audit "
    ".secrets.baseline; keep any explanation as an ordinary comment."
)


@dataclass(frozen=True)
class Marker:
    """One scanner's inline suppression syntax."""

    rule: str
    scanner: str
    pattern: re.Pattern[str]


# "[:]" below: the pattern must not match its own source line.
_COMMENT = r"(?:#|//|/\*|<!--|--|;)"
MARKERS = (
    # detect-secrets' own regex needs no comment leader ('), so none is required here.
    Marker(
        "detect-secrets-allowlist",
        "detect-secrets",
        re.compile(r"pragma: ?(?:allow|white)list(?:[ -]nextline)?[ -]secret"),
    ),
    Marker("bandit-nosec", "bandit", re.compile(r"#\s*nosec\b", re.IGNORECASE)),
    Marker(
        "semgrep-nosemgrep", "semgrep", re.compile(_COMMENT + r"\s*nosem(?:grep)?\b", re.IGNORECASE)
    ),
    Marker("zizmor-ignore", "zizmor", re.compile(r"#\s*zizmor\s*:\s*ignore\b", re.IGNORECASE)),
    Marker(
        "hadolint-ignore",
        "hadolint",
        re.compile(r"#\s*hadolint\s+(?:global\s+)?ignore\s*=", re.IGNORECASE),
    ),
    Marker("gitleaks-allow", "gitleaks", re.compile(r"gitleaks[:]allow", re.IGNORECASE)),
    Marker("trivy-ignore", "trivy", re.compile(r"#\s*trivy:ignore:", re.IGNORECASE)),
    Marker("checkov-skip", "checkov", re.compile(r"checkov[:]skip=", re.IGNORECASE)),
    Marker("sonar-nosonar", "SonarQube", re.compile(r"\bNOSONAR\b")),
)
# Ruff and flake8 noqa comments, line- or file-level, with or without codes.
_NOQA = re.compile(
    r"#\s*(?:(?:ruff|flake8)\s*:\s*)?noqa\b(?P<colon>\s*:\s*"
    r"(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
_SECURITY_CODE = re.compile(r"^S[0-9]+$")
# Files in which a scanner reads paths or findings to skip.
IGNORE_FILES = {
    ".semgrepignore": "semgrep",
    ".gitleaksignore": "gitleaks",
    ".trivyignore": "trivy",
    ".trivyignore.yaml": "trivy",
}


def find(root: Path, files: list[str]) -> list[Finding]:
    """Every inline suppression and scanner ignore file among ``files`` (relative to root)."""
    findings: list[Finding] = []
    for name in files:
        scanner = IGNORE_FILES.get(Path(name).name)
        if scanner is not None:
            findings.append(_finding("ignore-file", scanner, name, None, name))
        text = _text(root / name)
        for number, line in enumerate(text.splitlines(), 1):
            findings += [
                _finding(rule, scanner, name, number, line) for rule, scanner in matches(line)
            ]
    return findings


def matches(line: str) -> list[tuple[str, str]]:
    """(rule, scanner) for each suppression in one line."""
    found = [(m.rule, m.scanner) for m in MARKERS if m.pattern.search(line)]
    for noqa in _NOQA.finditer(line):
        codes = re.split(r"[\s,]+", noqa.group("codes") or "")
        if not noqa.group("codes") or any(_SECURITY_CODE.match(code) for code in codes):
            found.append(("ruff-noqa-security", "ruff"))
            break
    return found


def _text(path: Path) -> str:
    """The file as text; "" for what no scanner reads as text (binary, huge, unreadable)."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if len(data) > MAX_BYTES or b"\0" in data[:8192]:
        return ""
    return data.decode("utf-8", errors="replace")


def _finding(rule: str, scanner: str, path: str, line: int | None, code: str) -> Finding:
    """The finding never quotes the line: it may hold the very secret it allowlists."""
    what = f"{scanner} ignore file" if rule == "ignore-file" else f"inline {scanner} suppression"
    return Finding(
        stage="secrets",
        tool=TOOL,
        rule_id=rule,
        severity=Severity.MEDIUM,
        confidence=Confidence.HIGH,
        message=f"{what}: findings are accepted only in waivers.yml (owner, reason, expiry)",
        location=f"{path}:{line}" if line else path,
        fingerprint=code_fingerprint(TOOL, rule, path, code),
        help=FIX,
        owasp=OWASP,
        path=path,
        line=line,
    )

"""Passive checks on every response DAST saw: headers, cookies, content types, leaking errors.

ZAP's passive scanner does this where a ZAP daemon runs; these checks run in
every DAST run, on every response schemathesis recorded and every probe
answer (:mod:`.probe`), so a missing security header fails DAST without ZAP.
Each check is a small function of one response; a problem is reported once
per (check, operation, detail), with how many responses showed it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from secgate.model import Confidence, Finding, Severity, fingerprint
from secgate.stages.dast.client import Answer
from secgate.stages.dast.target import STAGE
from secgate.taxonomy import MISCONFIGURATION

TOOL = "secgate-passive"


@dataclass(frozen=True)
class Issue:
    """What one check found in one response."""

    check: str  # e.g. "missing-hsts"
    severity: Severity
    detail: str  # stable text: never a request id, timestamp or token
    cwe: str


def _security_headers(answer: Answer) -> list[Issue]:
    """HSTS, nosniff, CSP and frame protection on every response; no-store when authenticated."""
    headers = answer.headers
    issues = []
    if "max-age=" not in headers.get("strict-transport-security", ""):
        detail = "Strict-Transport-Security"
        issues.append(Issue("missing-hsts", Severity.MEDIUM, detail, "CWE-319"))
    if headers.get("x-content-type-options", "").strip().lower() != "nosniff":
        issues.append(
            Issue("missing-nosniff", Severity.MEDIUM, "X-Content-Type-Options: nosniff", "CWE-693")
        )
    csp = headers.get("content-security-policy", "")
    if not csp:
        issues.append(Issue("missing-csp", Severity.MEDIUM, "Content-Security-Policy", "CWE-693"))
    if "frame-ancestors" not in csp and "x-frame-options" not in headers:
        issues.append(
            Issue(
                "missing-frame-protection",
                Severity.MEDIUM,
                "CSP frame-ancestors or X-Frame-Options",
                "CWE-1021",
            )
        )
    if answer.authenticated and "no-store" not in headers.get("cache-control", "").lower():
        issues.append(
            Issue("cacheable-authenticated", Severity.MEDIUM, "Cache-Control: no-store", "CWE-524")
        )
    return issues


def _cookies(answer: Answer) -> list[Issue]:
    """Every Set-Cookie is Secure, HttpOnly and SameSite (joined cookies are split on commas)."""
    raw = answer.headers.get("set-cookie", "")
    issues = []
    for cookie in re.split(r",(?=\s*[^;=\s]+=)", raw) if raw else []:
        attributes = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]}
        name = cookie.split("=", 1)[0].strip()
        missing = [flag for flag in ("secure", "httponly", "samesite") if flag not in attributes]
        if missing:
            detail = f"cookie {name} without {', '.join(missing)}"
            issues.append(Issue("weak-cookie", Severity.MEDIUM, detail, "CWE-614"))
    return issues


def _content_type(answer: Answer) -> list[Issue]:
    """A body says what it is, and a JSON type holds JSON."""
    if not answer.body or answer.method == "HEAD":
        return []
    kind = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not kind:
        return [Issue("missing-content-type", Severity.MEDIUM, "no Content-Type", "CWE-436")]
    if kind == "application/json" or kind.endswith("+json"):
        try:
            json.loads(answer.body)
        except ValueError:
            return [Issue("content-type-mismatch", Severity.MEDIUM, f"{kind} not JSON", "CWE-436")]
    return []


# What an error page must never show: text that only a crash or a debug page writes.
LEAKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("python traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("source file path", re.compile(r"File \"[^\"]+\.py\", line \d+|(?:/[\w.-]+)+\.py\b")),
    ("werkzeug debugger", re.compile(r"Werkzeug Debugger|__debugger__")),
    (
        "exception class name",
        # KeyError, OverflowError, pydantic_core.ValidationError...: one CamelCase word.
        re.compile(r"\b(?:[a-z_]\w*\.)*(?:[A-Z][a-z0-9]+|[A-Z]{2,})+(?:Error|Exception)\b"),
    ),
    (
        "database error text",
        re.compile(
            r"pymongo|\bbson\b|OperationFailure|ServerSelectionTimeout|DuplicateKeyError|"
            r"E11000|WriteError|\$where"
        ),
    ),
)


def _leaks(answer: Answer) -> list[Issue]:
    """Error bodies quoting internals, and a Server header naming a version."""
    issues = []
    if answer.status >= 400:
        text = answer.body.decode("utf-8", errors="replace")
        for label, pattern in LEAKS:
            if pattern.search(text):
                issues.append(Issue("error-leaks-internals", Severity.MEDIUM, label, "CWE-209"))
    for header in ("server", "x-powered-by"):
        value = answer.headers.get(header, "")
        if re.search(r"\d+\.\d+", value):
            detail = f"{header} header names a version"
            issues.append(Issue("version-disclosure", Severity.LOW, detail, "CWE-200"))
    return issues


CHECKS: tuple[Callable[[Answer], list[Issue]], ...] = (
    _security_headers,
    _cookies,
    _content_type,
    _leaks,
)


def check(answer: Answer) -> list[Issue]:
    """Every problem one response shows."""
    return [issue for run in CHECKS for issue in run(answer)]


def findings(seen: Iterable[tuple[str, Answer]], base_url: str, source: str) -> list[Finding]:
    """One finding per (check, operation, detail) over ``(operation label, answer)`` pairs.

    ``source`` names what sent the requests (schemathesis, the probe), for
    the message; the fingerprint does not depend on it or on counts.
    """
    grouped: dict[tuple[str, str, str], tuple[Issue, list[int]]] = {}
    for label, answer in seen:
        for issue in check(answer):
            key = (issue.check, label, issue.detail)
            grouped.setdefault(key, (issue, []))[1].append(answer.status)
    result = []
    for (name, label, detail), (issue, statuses) in sorted(grouped.items()):
        method, _, path = label.partition(" ")
        example = ", ".join(str(status) for status in sorted(set(statuses))[:5])
        result.append(
            Finding(
                stage=STAGE,
                tool=TOOL,
                rule_id=f"passive/{name}",
                severity=issue.severity,
                confidence=Confidence.HIGH,  # seen in a real response
                message=(
                    f"{detail}: {len(statuses)} response(s) to {label} "
                    f"(status {example}; requests sent by {source})"
                ),
                location=f"{method} {base_url}{path}",
                fingerprint=fingerprint(STAGE, TOOL, name, label, detail),
                help=HELP.get(name, ""),
                owasp=MISCONFIGURATION,
                cwe=issue.cwe,
            )
        )
    return result


HELP = {
    "missing-hsts": "Send Strict-Transport-Security: max-age=... on every HTTPS response.",
    "missing-nosniff": "Send X-Content-Type-Options: nosniff on every response.",
    "missing-csp": "Send a Content-Security-Policy (an API: default-src 'none').",
    "missing-frame-protection": "Send CSP frame-ancestors 'none' or X-Frame-Options: DENY.",
    "cacheable-authenticated": "Send Cache-Control: no-store on responses to authenticated calls.",
    "weak-cookie": "Set Secure, HttpOnly and SameSite on every cookie.",
    "missing-content-type": "Label every body with its Content-Type.",
    "content-type-mismatch": "Send JSON only under a JSON media type, and valid JSON under it.",
    "error-leaks-internals": "Answer errors with a generic problem+json body; log the details.",
    "version-disclosure": "Do not name the server software's version in response headers.",
}

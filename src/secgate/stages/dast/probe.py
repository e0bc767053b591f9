"""Probe routes the OpenAPI document does not describe: they must not answer, crash or leak.

Scanners driven by the document only attack what it lists; a debug console,
an admin page or a forgotten blueprint is exactly what it does not list. The
probe requests common undocumented paths (with the auth header, so a route
behind authentication answers too) and reports any that answers 2xx (it
exists and is not documented) or 5xx (it crashed). TRACE goes to every
documented path as well; the other methods the document does not list on
documented paths (PUT, DELETE, ...) are schemathesis' job: its coverage
phase sends them and its ``unsupported_method`` check wants 405. OPTIONS is
left alone: a 200 with ``Allow`` is valid HTTP (and CORS preflight). Every
probe answer also goes through the passive checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from secgate.model import Confidence, Finding, ScanContext, ScanOutput, Severity, fingerprint
from secgate.stages.dast import passive
from secgate.stages.dast.client import (
    Answer,
    TargetUnreachable,
    openapi,
    operation_of,
    operations,
    send,
)
from secgate.stages.dast.target import STAGE, Target
from secgate.taxonomy import MISCONFIGURATION

TOOL = "secgate-probe"
# (method, path) pairs nothing documents; paths are sent verbatim (no normalisation).
PROBES: tuple[tuple[str, str], ...] = (
    ("GET", "/admin"),
    ("GET", "/admin/"),
    ("GET", "/debug"),
    ("GET", "/console"),
    ("GET", "/console?__debugger__=yes&cmd=resource&f=style.css"),
    ("GET", "/.git/config"),
    ("GET", "/.env"),
    ("GET", "/server-status"),
    ("GET", "/metrics"),
    ("GET", "/actuator"),
    ("GET", "/api"),
    ("GET", "/api/v1"),
    ("GET", "/api/v1/"),
    ("GET", "/api/v1/../"),
    ("GET", "/api/v1/%2e%2e/"),
    ("GET", "/api/v1/admin"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/debug"),
    ("GET", "/api/v2/events"),
    ("GET", "/api/internal"),
    ("GET", "/swagger.json"),
    ("GET", "/static/"),
    ("POST", "/admin"),
    ("DELETE", "/api/v1/events"),
    ("PUT", "/api/v1/tokens"),
    ("TRACE", "/"),
)


def scan(ctx: ScanContext, target: Target, out: Path) -> ScanOutput:
    """Send every probe; findings for what answered, passive findings for every answer."""
    timeout = float(ctx.options.get("request_timeout", "10"))
    try:
        documented = operations(openapi(target, timeout))
        probes = [*PROBES, *trace_probes(documented)]
        answers = [send(target, method, path, timeout) for method, path in probes]
    except TargetUnreachable as exc:
        return ScanOutput(errors=[f"probe could not reach the target: {exc}"])
    findings = [
        finding
        for answer in answers
        if operation_of(answer.method, answer.path, documented) is None
        for finding in _route_findings(answer, target.base_url)
    ]
    findings += passive.findings(
        ((f"{answer.method} {answer.path}", answer) for answer in answers),
        target.base_url,
        "the probe",
    )
    report = out / "probe.json"
    rows = [{"method": a.method, "path": a.path, "status": a.status} for a in answers]
    report.write_text(json.dumps({"probes": rows}, indent=2) + "\n", encoding="utf-8")
    authenticated = "yes" if target.auth else "no"
    summary = (
        f"{len(answers)} undocumented routes and methods probed, authenticated: {authenticated}"
    )
    return ScanOutput(
        findings=findings,
        tool_versions={TOOL: "built-in", passive.TOOL: "built-in"},
        artifacts=[report],
        metadata={"probe": summary},
    )


def trace_probes(documented: list[str]) -> list[tuple[str, str]]:
    """TRACE on every documented path, path parameters filled with a placeholder."""
    paths = dict.fromkeys(operation.split(" ", 1)[1] for operation in documented)
    return [("TRACE", re.sub(r"\{[^}/]+\}", "0", path)) for path in paths]


def _route_findings(answer: Answer, base_url: str) -> list[Finding]:
    """A 2xx means an undocumented route exists; a 5xx means it crashed."""
    if 200 <= answer.status < 300:
        rule, severity, what = "undocumented-route", Severity.HIGH, "answers"
    elif answer.status >= 500:
        rule, severity, what = "undocumented-route-error", Severity.HIGH, "crashes on"
    else:
        return []
    label = f"{answer.method} {answer.path}"
    return [
        Finding(
            stage=STAGE,
            tool=TOOL,
            rule_id=f"probe/{rule}",
            severity=severity,
            confidence=Confidence.HIGH,
            message=f"the server {what} {label}, which the OpenAPI document does not describe "
            f"(status {answer.status})",
            location=f"{answer.method} {base_url}{answer.path}",
            fingerprint=fingerprint(STAGE, TOOL, rule, label),
            help="Remove the route, or document it (and its authorisation) in the OpenAPI "
            "document; undocumented paths must answer 404 (unknown methods 405).",
            owasp=MISCONFIGURATION,
            cwe="CWE-1059" if rule == "undocumented-route" else "CWE-755",
        )
    ]

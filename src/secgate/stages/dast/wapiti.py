"""wapiti: import every operation of ``<base_url>/openapi.json`` and inject payloads.

wapiti explores the target from the OpenAPI document (``--swagger``: every
documented operation, with its parameters; secgate fetches
``<base_url>/openapi.json`` and hands wapiti a private copy, so wapiti's own
unauthenticated fetch is not needed) besides ``<base_url>/``, sends the
auth header (``-H``) with every request, and attacks with its modules (XSS,
SQL, command, file, redirect, CRLF). It exits 0 whatever it finds, so only its
JSON report says anything.

What it reached is counted against the same document: the report's crawled
requests (``--detailed-report 1``: method, URL and status, no headers) mapped
to documented operations. A run that reached no operation proved nothing and
is an error ("ineffective"), never a pass.

wapiti keeps the headers it sent in its session and configuration stores:
both live in a private temporary directory, removed when wapiti ends, never
in the report directory; the header's value is also redacted from the files
kept in the report. The header itself has to be on wapiti's command line (it
has no other way to take one), so it is visible in ``ps`` while wapiti runs.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version

from secgate.model import Confidence, Finding, ScanContext, ScanOutput, Severity, fingerprint
from secgate.stages.dast import wapiti_xml
from secgate.stages.dast.client import TargetUnreachable, openapi, operation_of, operations
from secgate.stages.dast.target import STAGE, Target, origin
from secgate.taxonomy import BROKEN_ACCESS_CONTROL, INJECTION, MISCONFIGURATION, SSRF
from secgate.tools import ToolFailed, ToolMissing, failure_summary, run_tool

# Modules present in wapiti 3.0 and 3.2 alike; "ssrf" is left out because it
# makes the target fetch an external endpoint.
DEFAULT_MODULES = "xss,permanentxss,sql,exec,file,redirect,crlf"
REDACTED = "[redacted by secgate]"
# wapiti category (vulnerability or anomaly name; 3.0 and 3.2 spellings) -> (OWASP, CWE).
TAXONOMY: dict[str, tuple[str, str | None]] = {
    "Cross Site Scripting": (INJECTION, "CWE-79"),
    "Reflected Cross Site Scripting": (INJECTION, "CWE-79"),
    "Stored Cross Site Scripting": (INJECTION, "CWE-79"),
    "SQL Injection": (INJECTION, "CWE-89"),
    "Blind SQL Injection": (INJECTION, "CWE-89"),
    "Commands execution": (INJECTION, "CWE-78"),
    "Command execution": (INJECTION, "CWE-78"),
    "CRLF Injection": (INJECTION, "CWE-93"),
    "Path Traversal": (BROKEN_ACCESS_CONTROL, "CWE-22"),
    "File Handling": (BROKEN_ACCESS_CONTROL, "CWE-22"),
    "Open Redirect": (BROKEN_ACCESS_CONTROL, "CWE-601"),
    "Server Side Request Forgery": (SSRF, "CWE-918"),
    "XML External Entity": (MISCONFIGURATION, "CWE-611"),
    "XXE": (MISCONFIGURATION, "CWE-611"),
    "Internal Server Error": (MISCONFIGURATION, "CWE-755"),
}


def scan(ctx: ScanContext, target: Target, out: Path) -> ScanOutput:
    """Run wapiti against ``target``; nothing of the auth header's value is kept."""
    secret = target.auth[1] if target.auth else ""
    report, log_file = out / "wapiti.json", out / "wapiti.log"
    try:
        document = openapi(target)
    except TargetUnreachable as exc:
        return ScanOutput(errors=[f"wapiti not run: cannot read the OpenAPI document: {exc}"])
    documented = operations(document)
    try:
        with tempfile.TemporaryDirectory(prefix="secgate-wapiti-") as private:
            spec = Path(private) / "openapi.json"
            spec.write_text(json.dumps(document), encoding="utf-8")
            _run(ctx, target, (report, log_file), spec, Path(private))
    except (ToolMissing, ToolFailed) as exc:
        return ScanOutput(errors=[redact(f"wapiti could not run: {failure_summary(exc)}", secret)])
    finally:
        for kept in (report, log_file):
            redact_file(kept, secret)
    try:
        found = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return ScanOutput(errors=[f"wapiti exited 0 without a readable report: {exc}"])
    xml_report = wapiti_xml.write(found, out / "wapiti.xml")  # for DefectDojo's wapiti parser
    reached = reached_operations(found, target.base_url, documented)
    versions = {"wapiti": str((found.get("infos") or {}).get("version", "unknown"))}
    if not reached:
        reason = (
            f"wapiti ineffective: it reached none of the {len(documented)} documented "
            "operations (see dast/wapiti.log)"
        )
        artifacts = [report, xml_report, log_file]
        return ScanOutput(tool_versions=versions, artifacts=artifacts, errors=[reason])
    requests = len((found.get("infos") or {}).get("crawled_pages") or [])
    authenticated = "yes" if target.auth else "no"
    summary = (
        f"{len(reached)} of {len(documented)} operations reached, {requests} requests "
        f"explored before attacks, authenticated: {authenticated}"
    )
    return ScanOutput(
        findings=parse_wapiti(found, target.base_url),
        tool_versions=versions,
        artifacts=[report, xml_report, log_file],
        metadata={"wapiti": summary},
    )


def reached_operations(report: dict[str, Any], base_url: str, documented: list[str]) -> set[str]:
    """Documented operations among the requests wapiti explored (``--detailed-report 1``)."""
    prefix = urlsplit(base_url).path
    reached = set()
    for page in (report.get("infos") or {}).get("crawled_pages") or []:
        request = page.get("request") or {}
        path = urlsplit(str(request.get("url", ""))).path
        if path.startswith(prefix):
            operation = operation_of(
                str(request.get("method", "GET")), path[len(prefix) :], documented
            )
            if operation is not None:
                reached.add(operation)
    return reached


def _run(
    ctx: ScanContext, target: Target, outputs: tuple[Path, Path], spec: Path, private: Path
) -> None:
    """wapiti from ``spec``: report and output in ``outputs``, its stores under ``private``."""
    base_url, auth = target.base_url, target.auth
    report, log_file = outputs
    report.unlink(missing_ok=True)
    opts = ctx.options
    args = [
        "-u", f"{base_url}/", "--scope", "folder", "--swagger", str(spec),
        "-m", opts.get("wapiti_modules", DEFAULT_MODULES),
        "-f", "json", "-o", str(report), "--detailed-report", "1",
        "--flush-session", "--store-session", str(private / "session"),
        "--store-config", str(private / "config"),
        "--verify-ssl", "1", "--max-scan-time", opts.get("wapiti_max_scan_time", "120"),
        "--timeout", opts.get("request_timeout", "10"), "--no-bugreport",
        # Out-of-band payloads must not name wapiti's public endpoints: point them at the target.
        "--external-endpoint", f"{base_url}/", "--internal-endpoint", f"{base_url}/",
    ]  # fmt: skip
    if auth:
        args += ["-H", f"{auth[0]}: {auth[1]}"]
    # wapiti's HTTP client reads the CA bundle from the environment.
    env = {"SSL_CERT_FILE": target.ca_file, "REQUESTS_CA_BUNDLE": target.ca_file}
    budget = int(opts.get("wapiti_max_scan_time", "120")) + 120
    done = run_tool(ctx, "wapiti", args, env=env, timeout=budget)
    log_file.write_text(done.stdout + done.stderr, encoding="utf-8")


def redact(text: str, secret: str) -> str:
    """``text`` without ``secret``, as written raw or inside a JSON string."""
    if not secret:
        return text
    for form in (secret, json.dumps(secret)[1:-1]):
        text = text.replace(form, REDACTED)
    return text


def redact_file(path: Path, secret: str) -> None:
    """Redact ``secret`` in a report file, if the file exists."""
    if secret and path.is_file():
        path.write_text(redact(path.read_text(encoding="utf-8"), secret), encoding="utf-8")


def _levels(report: dict[str, Any]) -> dict[int, Severity]:
    """wapiti changed its level scale in 3.1: 1=high..3=low before, 0=info..4=critical after."""
    raw = str((report.get("infos") or {}).get("version", "")).replace("Wapiti", "").strip()
    try:
        legacy = Version(raw) < Version("3.1")
    except InvalidVersion:
        legacy = False
    if legacy:
        return {1: Severity.HIGH, 2: Severity.MEDIUM, 3: Severity.LOW}
    return {
        4: Severity.CRITICAL,
        3: Severity.HIGH,
        2: Severity.MEDIUM,
        1: Severity.LOW,
        0: Severity.INFO,
    }


def parse_wapiti(report: dict[str, Any], base_url: str) -> list[Finding]:
    """Findings from wapiti's JSON report: its vulnerabilities and anomalies sections."""
    levels = _levels(report)
    server = origin(base_url)
    findings: list[Finding] = []
    for section in ("vulnerabilities", "anomalies"):
        for category, items in (report.get(section) or {}).items():
            owasp, cwe = TAXONOMY.get(category, (None, None))
            solution = str(
                ((report.get("classifications") or {}).get(category) or {}).get("sol", "")
            )
            for item in items or []:
                method, path = str(item.get("method", "GET")), str(item.get("path", "/"))
                parameter = str(item.get("parameter", ""))
                findings.append(
                    Finding(
                        stage=STAGE,
                        tool="wapiti",
                        rule_id=f"wapiti/{category}",
                        severity=levels.get(int(item.get("level", 2)), Severity.MEDIUM),
                        confidence=Confidence.MEDIUM if section == "anomalies" else Confidence.HIGH,
                        message=f"{category}: {item.get('info', '')}".strip(),
                        location=f"{method} {server}{path}",
                        fingerprint=fingerprint(STAGE, "wapiti", category, method, path, parameter),
                        help=" ".join(solution.split())[:300],
                        owasp=owasp,
                        cwe=cwe,
                    )
                )
    return findings

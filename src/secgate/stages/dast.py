"""DAST stage: attack the project's own running server on 127.0.0.1 over verified TLS.

Three tools, one target:

- schemathesis fuzzes every operation of ``<base_url>/openapi.json`` (all checks:
  5xx, schema and status-code conformance, negative data, auth...);
- wapiti crawls ``<base_url>/`` and injects payloads (XSS, SQL, command, file, ...);
- OWASP ZAP (imports the OpenAPI document, spiders, active scan) when a ZAP
  daemon is reachable at env ``ZAP_API_URL``; otherwise the stage says
  "ZAP: not run" in its notes and metadata, never that ZAP found nothing.

The stage does not start the service: the caller passes ``base_url`` (and
``ca_file``, the CA that signed the server certificate). Only
``https://127.0.0.1[:port]`` is accepted: a DAST tool pointed elsewhere is an
attack on someone else's system. TLS is always verified against ``ca_file``.

Options (``ctx.options``, all strings): ``base_url``, ``ca_file`` (required);
``auth_header`` ("Name: value") or ``auth_header_file`` (a file holding it, so
the token is on no secgate command line; ``--dast-target-command`` passes one);
``dast_tools`` (default "schemathesis,wapiti,zap": a tool left out is noted,
not silently skipped);
``seed`` ("1"), ``max_examples`` ("50"), ``max_time`` (schemathesis budget,
"120" s), ``phases`` ("examples,coverage,fuzzing,stateful"), ``request_timeout``
("10" s), ``wapiti_modules`` (see :data:`DEFAULT_WAPITI_MODULES`),
``wapiti_max_scan_time`` ("120" s), ``zap_minutes`` ("10"), ``zap_required``
("false"; "true" turns "ZAP not run" into a stage error, as in the CI ZAP job).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version

from secgate import zap as zap_script
from secgate.model import Confidence, Finding, ScanContext, Severity, StageResult, fingerprint
from secgate.tools import ToolFailed, ToolMissing, run_tool, tool_version

log = logging.getLogger(__name__)

STAGE = "dast"
DEFAULT_TOOLS = "schemathesis,wapiti,zap"
# Modules present in wapiti 3.0 and 3.2 alike; "ssrf" is left out because it
# makes the target fetch an external endpoint.
DEFAULT_WAPITI_MODULES = "xss,permanentxss,sql,exec,file,redirect,crlf"
AUTH_ENV = "SECGATE_DAST_AUTH_VALUE"
INJECTION = "A03:2021-Injection"
ACCESS = "A01:2021-Broken Access Control"
MISCONFIG = "A05:2021-Security Misconfiguration"
AUTHN = "A07:2021-Identification and Authentication Failures"

# schemathesis failure type -> (OWASP, CWE) where the mapping is clear.
SCHEMATHESIS_TAXONOMY: dict[str, tuple[str | None, str | None]] = {
    "ServerError": (None, "CWE-755"),
    "IgnoredAuth": (AUTHN, "CWE-287"),
    "UseAfterFree": (ACCESS, "CWE-416"),
    "AcceptedNegativeData": (INJECTION, "CWE-20"),
}
# wapiti category (vulnerability or anomaly name; 3.0 and 3.2 spellings) -> (OWASP, CWE).
WAPITI_TAXONOMY: dict[str, tuple[str, str | None]] = {
    "Cross Site Scripting": (INJECTION, "CWE-79"),
    "Reflected Cross Site Scripting": (INJECTION, "CWE-79"),
    "Stored Cross Site Scripting": (INJECTION, "CWE-79"),
    "SQL Injection": (INJECTION, "CWE-89"),
    "Blind SQL Injection": (INJECTION, "CWE-89"),
    "Commands execution": (INJECTION, "CWE-78"),
    "Command execution": (INJECTION, "CWE-78"),
    "CRLF Injection": (INJECTION, "CWE-93"),
    "Path Traversal": (ACCESS, "CWE-22"),
    "File Handling": (ACCESS, "CWE-22"),
    "Open Redirect": (ACCESS, "CWE-601"),
    "Server Side Request Forgery": ("A10:2021-Server-Side Request Forgery", "CWE-918"),
    "XML External Entity": (MISCONFIG, "CWE-611"),
    "XXE": (MISCONFIG, "CWE-611"),
    "Internal Server Error": (MISCONFIG, "CWE-755"),
}


class TargetRefused(ValueError):
    """The DAST target is not the local HTTPS server we are allowed to attack."""


@dataclass(frozen=True)
class Target:
    """The one server this stage may attack, and how to talk to it."""

    base_url: str  # https://127.0.0.1:PORT[/prefix], no trailing slash
    ca_file: str  # CA bundle that verifies the server certificate
    auth: tuple[str, str] | None  # (header name, value)


def check_target(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash if it is ``https://127.0.0.1[:port][/path]``.

    Anything else (another host, a name that might resolve anywhere, userinfo,
    a query) is refused: DAST tools send attack payloads.
    """
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise TargetRefused(f"malformed port in DAST target {base_url!r}") from exc
    if parts.scheme != "https" or parts.hostname != "127.0.0.1":
        raise TargetRefused(f"DAST only targets https://127.0.0.1, not {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise TargetRefused(f"DAST target must be a plain base URL: {base_url!r}")
    return base_url.rstrip("/")


def _auth(raw: str) -> tuple[str, str] | None:
    if not raw:
        return None
    name, sep, value = raw.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()) or not value.strip():
        raise TargetRefused("auth_header must look like 'Name: value'")
    return name.strip(), value.strip()


def target_from(ctx: ScanContext) -> Target:
    """Validate the options that say what to attack; raise TargetRefused otherwise."""
    base_url = check_target(ctx.options.get("base_url", ""))
    ca_file = ctx.root / ctx.options.get("ca_file", "")
    if not ctx.options.get("ca_file") or not ca_file.is_file():
        raise TargetRefused(f"ca_file {str(ca_file)!r} is not a file: TLS is always verified")
    return Target(base_url, str(ca_file), _auth(_auth_header(ctx)))


def _auth_header(ctx: ScanContext) -> str:
    """``auth_header``, or the content of ``auth_header_file`` (never quoted in an error)."""
    header_file = ctx.options.get("auth_header_file", "")
    if not header_file:
        return ctx.options.get("auth_header", "")
    if ctx.options.get("auth_header"):
        raise TargetRefused("give auth_header or auth_header_file, not both")
    try:
        return (ctx.root / header_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TargetRefused(
            f"cannot read auth_header_file {header_file!r}: {exc.strerror}"
        ) from None


def _short(exc: Exception) -> str:
    """First and last line of a tool failure: what failed, and the error it died with."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"


def _origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


# --- schemathesis -----------------------------------------------------------


def _schemathesis_config(
    out: Path, auth: tuple[str, str] | None, project_config: Path | None = None
) -> Path:
    """A config file for the auth header: its value reaches schemathesis via env, not argv.

    The project's own ``security/schemathesis.toml`` (per-operation
    expectations, each with its reason) is appended when it exists.
    """
    config = out / "schemathesis.toml"
    cache = json.dumps(str(out / "schemathesis-cache"))  # a TOML basic string is a JSON string
    # The crash cache (for `st replay`) stays with this run's reports, not in the cwd.
    lines = ["# written by secgate's DAST stage", "[cache]", f"directory = {cache}"]
    if auth:
        lines += ["[headers]", f'"{auth[0]}" = "${{{AUTH_ENV}}}"']
    if project_config is not None and project_config.is_file():
        lines += [f"# from {project_config.name}", project_config.read_text(encoding="utf-8")]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def parse_schemathesis(report: dict[str, Any], base_url: str) -> list[Finding]:
    """One finding per (failure code, operation) of a schemathesis 4 JSON run report."""
    findings: list[Finding] = []
    for failure in report.get("failures") or []:
        owasp, cwe = SCHEMATHESIS_TAXONOMY.get(str(failure.get("type")), (None, None))
        for operation in failure.get("operations") or []:
            method, _, path = str(operation).partition(" ")
            code = str(failure.get("code"))
            title = str(failure.get("title"))
            findings.append(
                Finding(
                    stage=STAGE,
                    tool="schemathesis",
                    rule_id=f"schemathesis/{code}",
                    severity=Severity.parse(str(failure.get("severity", "high"))),
                    confidence=Confidence.HIGH,  # schemathesis reproduced it with a real request
                    message=f"{title} ({failure.get('count')} case(s)) in {operation}",
                    location=f"{method} {base_url}{path}",
                    fingerprint=fingerprint(STAGE, "schemathesis", code, str(operation)),
                    help=f"schemathesis explain {code}; reproductions in dast/schemathesis.log",
                    owasp=owasp,
                    cwe=cwe,
                )
            )
    return findings


def _schemathesis(ctx: ScanContext, target: Target, out: Path, result: StageResult) -> str | None:
    base_url, auth = target.base_url, target.auth
    report = out / "schemathesis.json"
    junit = out / "schemathesis-junit.xml"
    opts = ctx.options
    args = [
        "--config-file",
        str(_schemathesis_config(out, auth, ctx.security_dir / "schemathesis.toml")),
        "--no-color",
        "run", f"{base_url}/openapi.json", "--url", base_url,
        "--checks", "all", "--seed", opts.get("seed", "1"),
        "--max-examples", opts.get("max_examples", "50"), "--max-time", opts.get("max_time", "120"),
        "--phases", opts.get("phases", "examples,coverage,fuzzing,stateful"),
        "--request-timeout", opts.get("request_timeout", "10"), "--workers", "1",
        "--generation-database", "none",
        "--tls-verify", target.ca_file, "--max-redirects", "0",
        "--report", "junit,json",
        "--report-json-path", str(report),
        "--report-junit-path", str(junit),
    ]  # fmt: skip
    env = {AUTH_ENV: auth[1]} if auth else {}
    try:
        done = run_tool(
            ctx,
            "schemathesis",
            args,
            ok_codes=(0, 1),
            env=env,
            timeout=int(opts.get("max_time", "120")) + 120,
        )
    except (ToolMissing, ToolFailed) as exc:
        return f"schemathesis could not run: {_short(exc)}"
    log_file = out / "schemathesis.log"
    log_file.write_text(done.stdout + done.stderr, encoding="utf-8")
    result.tool_versions["schemathesis"] = tool_version(ctx, "schemathesis")
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"schemathesis exited {done.returncode} without a readable report: {exc}"
    result.artifacts += [report, junit, log_file]
    if document.get("errors"):
        return f"schemathesis hit errors (not failures): {json.dumps(document['errors'])[:500]}"
    operations = document.get("operations") or {}
    if not operations.get("tested"):
        return f"schemathesis tested no operation of {base_url}/openapi.json"
    findings = parse_schemathesis(document, base_url)
    if done.returncode == 1 and not findings:
        return "schemathesis exited 1 but its report lists no failure"
    result.findings += findings
    cases = (document.get("test_cases") or {}).get("generated")
    result.metadata["schemathesis"] = (
        f"{operations.get('tested')} operations, {cases} cases, "
        f"seed {document.get('seed')}, stop: {document.get('stop_reason')}"
    )
    for kind, items in (document.get("warnings") or {}).items():
        if items:
            result.notes.append(f"schemathesis warning {kind}: {items}")
    return None


# --- wapiti -----------------------------------------------------------------


def _wapiti_levels(report: dict[str, Any]) -> dict[int, Severity]:
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
    levels = _wapiti_levels(report)
    origin = _origin(base_url)
    findings: list[Finding] = []
    for section in ("vulnerabilities", "anomalies"):
        for category, items in (report.get(section) or {}).items():
            owasp, cwe = WAPITI_TAXONOMY.get(category, (None, None))
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
                        location=f"{method} {origin}{path}",
                        fingerprint=fingerprint(STAGE, "wapiti", category, method, path, parameter),
                        help=" ".join(solution.split())[:300],
                        owasp=owasp,
                        cwe=cwe,
                    )
                )
    return findings


def _wapiti(ctx: ScanContext, target: Target, out: Path, result: StageResult) -> str | None:
    """wapiti exits 0 whatever it finds, so only its JSON report says anything.

    wapiti quotes the requests it sent, auth header included, in its report,
    its output and its session store: the session goes to a temporary
    directory, and the header's value is redacted from what we keep.
    """
    secret = target.auth[1] if target.auth else ""
    with tempfile.TemporaryDirectory(prefix="secgate-wapiti-") as session:
        error = _run_wapiti(ctx, target, out, Path(session), result)
    for kept in (out / "wapiti.json", out / "wapiti.log"):
        redact_file(kept, secret)
    if error is not None:
        return redact(error, secret)
    try:
        document = json.loads((out / "wapiti.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"wapiti exited 0 without a readable report: {exc}"
    result.artifacts += [out / "wapiti.json", out / "wapiti.log"]
    result.tool_versions["wapiti"] = str((document.get("infos") or {}).get("version", "unknown"))
    result.findings += parse_wapiti(document, target.base_url)
    return None


def _run_wapiti(
    ctx: ScanContext, target: Target, out: Path, session: Path, result: StageResult
) -> str | None:
    base_url, auth = target.base_url, target.auth
    report = out / "wapiti.json"
    report.unlink(missing_ok=True)
    opts = ctx.options
    args = [
        "-u", f"{base_url}/", "--scope", "folder",
        "-m", opts.get("wapiti_modules", DEFAULT_WAPITI_MODULES),
        "-f", "json", "-o", str(report),
        "--flush-session", "--store-session", str(session),
        "--verify-ssl", "1", "--max-scan-time", opts.get("wapiti_max_scan_time", "120"),
        "--timeout", opts.get("request_timeout", "10"), "--no-bugreport",
        # Out-of-band payloads must not name wapiti's public endpoints: point them at the target.
        "--external-endpoint", f"{base_url}/", "--internal-endpoint", f"{base_url}/",
    ]  # fmt: skip
    if auth:
        # wapiti has no config file: the header is on its command line (visible in `ps`).
        args += ["-H", f"{auth[0]}: {auth[1]}"]
    # wapiti's HTTP client reads the CA bundle from the environment.
    env = {"SSL_CERT_FILE": target.ca_file, "REQUESTS_CA_BUNDLE": target.ca_file}
    budget = int(opts.get("wapiti_max_scan_time", "120")) + 120
    try:
        done = run_tool(ctx, "wapiti", args, env=env, timeout=budget)
    except (ToolMissing, ToolFailed) as exc:
        return f"wapiti could not run: {_short(exc)}"
    (out / "wapiti.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    return None


REDACTED = "[redacted by secgate]"


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


# --- ZAP --------------------------------------------------------------------


def parse_zap(document: dict[str, Any]) -> list[Finding]:
    """Findings from ZAP's ``core/view/alerts``; alerts users marked false positive are dropped."""
    findings: list[Finding] = []
    for alert in document.get("alerts") or []:
        confidence_word = str(alert.get("confidence", "Medium"))
        if confidence_word == "False Positive":
            continue
        confidence = (
            Confidence.HIGH if confidence_word == "Confirmed" else Confidence.parse(confidence_word)
        )
        cwe = (
            f"CWE-{alert['cweid']}"
            if str(alert.get("cweid", "-1")) not in ("", "-1", "0")
            else None
        )
        name, method, url = (
            str(alert.get("alert")),
            str(alert.get("method", "GET")),
            str(alert.get("url")),
        )
        findings.append(
            Finding(
                stage=STAGE,
                tool="zap",
                rule_id=f"zap/{alert.get('pluginId')}",
                severity=Severity.parse(str(alert.get("risk", "Medium"))),
                confidence=confidence,
                message=f"{name}: {alert.get('param', '')} {alert.get('evidence', '')}".strip(),
                location=f"{method} {url}",
                fingerprint=fingerprint(
                    STAGE,
                    "zap",
                    str(alert.get("pluginId")),
                    method,
                    urlsplit(url).path,
                    str(alert.get("param", "")),
                ),
                help=" ".join(str(alert.get("solution", "")).split())[:300],
                cwe=cwe,
            )
        )
    return findings


def _zap(ctx: ScanContext, target: Target, out: Path, result: StageResult) -> str | None:
    """Run src/secgate/zap.py under the scan venv's Python (zapv2 lives there).

    ZAP itself does not verify the target's certificate (it is an intercepting
    proxy); that is why ZAP only ever gets the validated loopback target.
    """
    base_url = target.base_url
    api_url = os.environ.get("ZAP_API_URL", "")
    required = ctx.options.get("zap_required", "false") == "true"
    if not api_url:
        return _zap_not_run("ZAP_API_URL unset", required, result)
    alerts, xml = out / "zap-alerts.json", out / "zap-report.xml"
    args = [
        str(Path(zap_script.__file__).resolve()), "--api-url", api_url, "--target", base_url,
        "--alerts", str(alerts), "--xml-report", str(xml),
        "--minutes", ctx.options.get("zap_minutes", "10"),
    ]  # fmt: skip
    timeout = int(float(ctx.options.get("zap_minutes", "10")) * 60) + 120
    try:
        done = run_tool(
            ctx, "python", args, ok_codes=(0, zap_script.EXIT_UNREACHABLE), timeout=timeout
        )
    except (ToolMissing, ToolFailed) as exc:
        return f"ZAP scan failed: {_short(exc)}"
    if done.returncode == zap_script.EXIT_UNREACHABLE:
        return _zap_not_run(f"no ZAP daemon at ZAP_API_URL={api_url}", required, result)
    try:
        document = json.loads(alerts.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"ZAP wrote no readable alerts: {exc}"
    result.artifacts += [alerts, xml]
    result.tool_versions["zap"] = str(document.get("zap_version", "unknown"))
    result.findings += parse_zap(document)
    result.metadata["zap"] = f"ran against {base_url} ({len(document.get('alerts') or [])} alerts)"
    return None


def _zap_not_run(reason: str, required: bool, result: StageResult) -> str | None:
    message = f"ZAP: not run ({reason})"
    result.metadata["zap"] = message
    result.notes.append(message)
    return message if required else None


# --- the stage --------------------------------------------------------------


def run(ctx: ScanContext) -> StageResult:
    """Run the selected DAST tools against ``base_url``; each failure is listed in ``error``."""
    started = time.monotonic()
    try:
        target = target_from(ctx)
    except TargetRefused as exc:
        return StageResult(
            stage=STAGE, ran=False, error=str(exc), seconds=time.monotonic() - started
        )
    out = ctx.report_dir / STAGE
    out.mkdir(parents=True, exist_ok=True)
    result = StageResult(stage=STAGE, ran=True, metadata={"target": target.base_url})
    tools = [
        name.strip()
        for name in ctx.options.get("dast_tools", DEFAULT_TOOLS).split(",")
        if name.strip()
    ]
    runners: dict[str, Callable[[], str | None]] = {
        "schemathesis": lambda: _schemathesis(ctx, target, out, result),
        "wapiti": lambda: _wapiti(ctx, target, out, result),
        "zap": lambda: _zap(ctx, target, out, result),
    }
    errors = [f"unknown DAST tool {name!r}" for name in tools if name not in runners]
    for name, runner in runners.items():
        if name not in tools:
            result.notes.append(f"{name}: not run (left out by option dast_tools)")
            continue
        error = runner()
        if error:
            errors.append(error)
    if errors:
        result.ran = False
        result.error = "; ".join(errors)
        log.error("DAST stage failed: %s", result.error)
    result.seconds = time.monotonic() - started
    return result

"""schemathesis: fuzz every operation of ``<base_url>/openapi.json`` with all its checks.

5xx, schema and status-code conformance, negative data, ignored auth...: each
(failure code, operation) becomes one finding. The run is seeded and
time-bounded; the auth header's value reaches schemathesis through the
environment, never its command line or a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from secgate.model import Confidence, Finding, ScanContext, ScanOutput, Severity, fingerprint
from secgate.stages.dast.target import STAGE, Target
from secgate.taxonomy import AUTHENTICATION_FAILURES, BROKEN_ACCESS_CONTROL, INJECTION
from secgate.tools import ToolFailed, ToolMissing, failure_summary, run_tool, tool_version

AUTH_ENV = "SECGATE_DAST_AUTH_VALUE"
# schemathesis failure type -> (OWASP, CWE) where the mapping is clear.
TAXONOMY: dict[str, tuple[str | None, str | None]] = {
    "ServerError": (None, "CWE-755"),
    "IgnoredAuth": (AUTHENTICATION_FAILURES, "CWE-287"),
    "UseAfterFree": (BROKEN_ACCESS_CONTROL, "CWE-416"),
    "AcceptedNegativeData": (INJECTION, "CWE-20"),
}


def scan(ctx: ScanContext, target: Target, out: Path) -> ScanOutput:
    """Run schemathesis against ``target``; its JSON report gives the findings."""
    base_url, auth = target.base_url, target.auth
    report = out / "schemathesis.json"
    junit = out / "schemathesis-junit.xml"
    opts = ctx.options
    args = [
        "--config-file",
        str(_config_file(out, auth, ctx.security_dir / "schemathesis.toml")),
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
    timeout = int(opts.get("max_time", "120")) + 120
    try:
        done = run_tool(ctx, "schemathesis", args, ok_codes=(0, 1), env=env, timeout=timeout)
    except (ToolMissing, ToolFailed) as exc:
        return ScanOutput(errors=[f"schemathesis could not run: {failure_summary(exc)}"])
    log_file = out / "schemathesis.log"
    log_file.write_text(done.stdout + done.stderr, encoding="utf-8")
    versions = {"schemathesis": tool_version(ctx, "schemathesis")}
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = f"schemathesis exited {done.returncode} without a readable report: {exc}"
        return ScanOutput(tool_versions=versions, errors=[reason])
    artifacts = [report, junit, log_file]
    findings = parse_schemathesis(document, base_url)
    problem = _unfinished(document, done.returncode, findings, base_url)
    if problem is not None:
        return ScanOutput(tool_versions=versions, artifacts=artifacts, errors=[problem])
    operations = document.get("operations") or {}
    cases = (document.get("test_cases") or {}).get("generated")
    summary = (
        f"{operations.get('tested')} operations, {cases} cases, "
        f"seed {document.get('seed')}, stop: {document.get('stop_reason')}"
    )
    warnings = [
        f"schemathesis warning {kind}: {items}"
        for kind, items in (document.get("warnings") or {}).items()
        if items
    ]
    return ScanOutput(
        findings=findings,
        tool_versions=versions,
        artifacts=artifacts,
        notes=warnings,
        metadata={"schemathesis": summary},
    )


def _unfinished(
    document: dict[str, Any], returncode: int, findings: list[Finding], base_url: str
) -> str | None:
    """Why a report that parsed still does not show a finished run, if it does not."""
    if document.get("errors"):
        return f"schemathesis hit errors (not failures): {json.dumps(document['errors'])[:500]}"
    if not (document.get("operations") or {}).get("tested"):
        return f"schemathesis tested no operation of {base_url}/openapi.json"
    if returncode == 1 and not findings:
        return "schemathesis exited 1 but its report lists no failure"
    return None


def _config_file(
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
        owasp, cwe = TAXONOMY.get(str(failure.get("type")), (None, None))
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

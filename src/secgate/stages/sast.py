"""SAST stage: bandit (Python security lints) and semgrep with our own rules.

bandit knows generic Python pitfalls; semgrep runs the rules in
``security/semgrep`` written for this stack (Flask request data into pymongo,
TLS verification off, secrets in logs, routes without an auth decorator...).
Registry rules are never used: they need the internet and change under us.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from secgate import bandit_levels
from secgate.model import (
    Confidence,
    Finding,
    ScanContext,
    ScanOutput,
    Severity,
    combine,
)
from secgate.source import code_fingerprint, read_lines, read_span, unique_fingerprints
from secgate.taxonomy import owasp_for, short_cwe, short_owasp
from secgate.tools import ToolFailed, ToolMissing, installed_version, run_tool

logger = logging.getLogger(__name__)

STAGE = "sast"


def run(ctx: ScanContext) -> ScanOutput:
    """Run bandit and semgrep side by side; a tool that fails is an error (the stage did not run).

    They are separate processes reading the same files and writing their own
    reports, so the stage takes as long as the slower of the two, not both.
    """
    targets = scan_targets(ctx.root)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = list(
            pool.map(lambda tool: _attempt(tool, ctx, targets), (run_bandit, run_semgrep))
        )
    output = combine(outputs)
    return dataclasses.replace(output, findings=unique_fingerprints(output.findings))


def _attempt(
    tool: Callable[[ScanContext, list[str]], ScanOutput], ctx: ScanContext, targets: list[str]
) -> ScanOutput:
    """One tool's output; if it fails, its error, so that the other tool still runs."""
    try:
        return tool(ctx, targets)
    except (ToolMissing, ToolFailed, ValueError) as exc:
        return ScanOutput(errors=[str(exc)])


def scan_targets(root: Path) -> list[str]:
    """What SAST scans: the shipped code under src/ (the whole tree if there is none)."""
    return ["src"] if (root / "src").is_dir() else ["."]


# --- bandit -----------------------------------------------------------------


def run_bandit(ctx: ScanContext, targets: list[str]) -> ScanOutput:
    """bandit → bandit.json + bandit.sarif in the report dir, parsed into findings."""
    config = ctx.security_dir / "bandit.yml"
    # --ignore-nosec: an inline nosec comment has no owner or expiry; waivers.yml does.
    common = ["-r", *targets, "-q", "--ignore-nosec"]
    notes = []
    if config.is_file():
        common += ["-c", str(config.absolute())]
    else:
        notes.append(f"bandit: no {config}, default configuration used")
    # Raises where bandit's default level would hide a real class; a bad file is a
    # ValueError, so the stage fails instead of running weaker.
    raises = bandit_levels.load(ctx.security_dir / bandit_levels.FILE_NAME)
    json_out = ctx.report_dir / "bandit.json"
    sarif_out = ctx.report_dir / "bandit.sarif"
    # Exit 1 means "issues found"; anything else is a crash.
    run_tool(ctx, "bandit", [*common, "-f", "json", "-o", str(json_out)], ok_codes=(0, 1))
    run_tool(ctx, "bandit", [*common, "-f", "sarif", "-o", str(sarif_out)], ok_codes=(0, 1))
    report = json.loads(json_out.read_text(encoding="utf-8"))
    findings = [
        bandit_levels.apply(bandit_finding(ctx.root, issue), str(issue["test_id"]), raises)
        for issue in report.get("results", [])
    ]
    errors = [
        could_not_scan("bandit", _relative(str(error.get("filename", "?"))), error.get("reason"))
        for error in report.get("errors", [])
    ]
    version = installed_version(ctx, "bandit", "bandit").removeprefix("bandit ").strip()
    return ScanOutput(
        findings=findings,
        tool_versions={"bandit": version},
        artifacts=[json_out, sarif_out],
        notes=notes,
        errors=errors,
    )


def bandit_finding(root: Path, issue: dict[str, Any]) -> Finding:
    """One bandit result → Finding (fingerprint over the flagged lines, not their numbers)."""
    path = _relative(str(issue["filename"]))
    line = int(issue["line_number"])
    line_range = [int(n) for n in issue.get("line_range") or [line]]
    code = read_lines(root, path, min(line_range), max(line_range))
    rule_id = f"{issue['test_id']}-{issue['test_name']}"
    cwe_id = (issue.get("issue_cwe") or {}).get("id")
    cwe = f"CWE-{cwe_id}" if cwe_id else None
    return Finding(
        stage=STAGE,
        tool="bandit",
        rule_id=rule_id,
        severity=Severity.parse(str(issue["issue_severity"])),
        confidence=Confidence.parse(str(issue["issue_confidence"])),
        message=str(issue["issue_text"]),
        location=f"{path}:{line}",
        fingerprint=code_fingerprint("bandit", rule_id, path, code),
        help=f"See {issue.get('more_info', 'the bandit documentation')} for the safe pattern.",
        owasp=owasp_for(cwe),
        cwe=cwe,
        path=path,
        line=line,
        help_uri=issue.get("more_info"),
    )


# --- semgrep ----------------------------------------------------------------


def run_semgrep(ctx: ScanContext, targets: list[str]) -> ScanOutput:
    """semgrep with security/semgrep only → semgrep.json + semgrep.sarif."""
    rules = ctx.security_dir / "semgrep"
    if not rules.is_dir():
        raise ToolFailed(f"semgrep: rules directory {rules} is missing")
    json_out = ctx.report_dir / "semgrep.json"
    sarif_out = ctx.report_dir / "semgrep.sarif"
    # semgrep's settings and log are run-time state, not evidence: outside the report bundle.
    state = Path(tempfile.mkdtemp(prefix="secgate-semgrep-"))
    args = [
        "scan",
        "--config",
        str(rules.absolute()),
        "--metrics=off",
        "--disable-version-check",
        "--disable-nosem",  # same reason as bandit's --ignore-nosec
        # One semgrep-core process: with the other stages running beside it, more jobs
        # cost more CPU (each parses the rules and files again) for no shorter stage.
        "--jobs=1",
        "--error",
        "--quiet",
        f"--json-output={json_out}",
        f"--sarif-output={sarif_out}",
        *targets,
    ]
    env = {
        # Without this every scan stalls ~100 s trying to reach the version server.
        "SEMGREP_ENABLE_VERSION_CHECK": "0",
        "SEMGREP_SEND_METRICS": "off",
        # Keep semgrep's settings and log out of $HOME.
        "SEMGREP_SETTINGS_FILE": str(state / "semgrep-settings.yml"),
        "SEMGREP_LOG_FILE": str(state / "semgrep.log"),
    }
    try:
        run_tool(ctx, "semgrep", args, ok_codes=(0, 1), env=env)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    report = json.loads(json_out.read_text(encoding="utf-8"))
    findings = [semgrep_finding(ctx.root, match) for match in report.get("results", [])]
    # Every entry, warnings too ("PartialParsing", "Syntax error", "Lexical error",
    # timeouts): each means our rules did not see all of a file.
    errors = [
        could_not_scan(
            "semgrep", _error_path(error), f"{_error_type(error)}: {error.get('message')}"
        )
        for error in report.get("errors", [])
    ]
    return ScanOutput(
        findings=findings,
        tool_versions={"semgrep": str(report.get("version", "unknown"))},
        artifacts=[json_out, sarif_out],
        errors=errors,
    )


def semgrep_finding(root: Path, match: dict[str, Any]) -> Finding:
    """One semgrep match → Finding; the rule id loses semgrep's config-path prefix."""
    extra = match.get("extra", {})
    metadata = extra.get("metadata", {})
    rule_id = str(match["check_id"]).rsplit(".", 1)[-1]
    path = _relative(str(match["path"]))
    line = int(match["start"]["line"])
    code = read_span(root, path, int(match["start"]["offset"]), int(match["end"]["offset"]))
    cwes = [short_cwe(str(c)) for c in _as_list(metadata.get("cwe"))]
    owasps = [short_owasp(str(o)) for o in _as_list(metadata.get("owasp"))]
    message = " ".join(str(extra.get("message", "")).split())
    summary, _, fix = message.partition(" Fix: ")
    return Finding(
        stage=STAGE,
        tool="semgrep",
        rule_id=rule_id,
        severity=Severity.parse(str(extra.get("severity", "warning"))),
        confidence=Confidence.parse(str(metadata.get("confidence", "medium"))),
        message=summary,
        location=f"{path}:{line}",
        fingerprint=code_fingerprint("semgrep", rule_id, path, code),
        help=fix[:1].upper() + fix[1:],
        owasp=owasps[0] if owasps else owasp_for(cwes[0] if cwes else None),
        cwe=cwes[0] if cwes else None,
        path=path,
        line=line,
        help_uri=next((str(ref) for ref in _as_list(metadata.get("references"))), None),
    )


# --- shared -----------------------------------------------------------------


def could_not_scan(tool: str, path: str, reason: object) -> str:
    """A stage error naming the file a tool could not analyse: a hole in the scan.

    An error, not a finding: the stage did not run, whatever the policy says
    about severities, so a file no rule can see never passes as clean.
    """
    lines = str(reason or "").strip().splitlines()
    text = " ".join(lines[0].split())[:300] if lines else "no reason given"
    return f"{tool} could not scan {path}: {text}"


def _error_type(error: dict[str, Any]) -> str:
    """semgrep's error type: "Syntax error", or ["PartialParsing", [spans]] -> "PartialParsing"."""
    kind = error.get("type")
    return str(kind[0]) if isinstance(kind, list) and kind else str(kind or "error")


def _error_path(error: dict[str, Any]) -> str:
    spans = error.get("spans") or []
    if spans and isinstance(spans[0], dict) and spans[0].get("file"):
        return _relative(str(spans[0]["file"]))
    return str(error.get("path", "?"))


def _relative(path: str) -> str:
    return path.removeprefix("./")


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]

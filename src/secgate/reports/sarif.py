"""SARIF 2.1.0: one file per tool that has no native SARIF, and one merged file.

``secgate.sarif`` is what GitHub code scanning and DefectDojo import: one run
per tool, every finding with ``partialFingerprints`` (our stable fingerprint,
so alerts survive line shifts) and waived findings marked as accepted
suppressions, with the waiver's reason, so the audit trail survives the import.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from secgate import ruledocs
from secgate.gate import GateVerdict
from secgate.model import Finding, Severity, StageResult
from secgate.waivers import Waiver

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "secgate/v1"

JsonObject = dict[str, Any]


def level(severity: Severity) -> str:
    """SARIF has three levels; HIGH and CRITICAL are errors, MEDIUM a warning."""
    if severity >= Severity.HIGH:
        return "error"
    return "warning" if severity == Severity.MEDIUM else "note"


def by_tool(results: list[StageResult]) -> dict[str, list[Finding]]:
    """Findings grouped per tool, including tools that ran and found nothing."""
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for result in results:
        for tool in result.tool_versions:
            grouped.setdefault(tool, [])
        for finding in result.findings:
            grouped[finding.tool].append(finding)
    return dict(sorted(grouped.items()))


def versions(results: list[StageResult]) -> dict[str, str]:
    return {tool: v for result in results for tool, v in result.tool_versions.items()}


def write_tool_sarifs(out: Path, results: list[StageResult], root: Path) -> list[Path]:
    """``<tool>.sarif`` for every tool whose stage did not already write a native one."""
    written = []
    tool_versions = versions(results)
    for tool, findings in by_tool(results).items():
        path = out / f"{tool}.sarif"
        if path.exists():
            continue
        run = tool_run(tool, tool_versions.get(tool, "unknown"), findings, {}, set(), root)
        path.write_text(json.dumps(document([run]), indent=2), encoding="utf-8")
        written.append(path)
    return written


def write_merged(
    path: Path,
    results: list[StageResult],
    verdict: GateVerdict,
    waivers: list[Waiver],
    root: Path,
) -> Path:
    """``secgate.sarif``: all tools, gate status per result, stages that did not run."""
    waiver_by_fp = {w.fingerprint: w for w in waivers}
    blocking = {f.fingerprint for f in verdict.blocking}
    tool_versions = versions(results)
    runs = [
        tool_run(tool, tool_versions.get(tool, "unknown"), findings, waiver_by_fp, blocking, root)
        for tool, findings in by_tool(results).items()
    ]
    runs += [not_run(result) for result in results if not result.ran]
    path.write_text(json.dumps(document(runs), indent=2), encoding="utf-8")
    return path


def document(runs: list[JsonObject]) -> JsonObject:
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": runs}


def tool_run(
    tool: str,
    version: str,
    findings: list[Finding],
    waivers: dict[str, Waiver],
    blocking: set[str],
    root: Path,
) -> JsonObject:
    """One SARIF run for one tool."""
    rule_ids = sorted({f.rule_id for f in findings})
    first = {rule: next(f for f in findings if f.rule_id == rule) for rule in rule_ids}
    return {
        "tool": {
            "driver": {
                "name": tool,
                "version": version,
                "rules": [rule(first[r]) for r in rule_ids],
            }
        },
        "automationDetails": {"id": f"secgate/{tool}/"},
        "results": [
            result(f, rule_ids.index(f.rule_id), waivers.get(f.fingerprint), blocking, root)
            for f in findings
        ],
    }


def rule(finding: Finding) -> JsonObject:
    """A SARIF rule from its first finding: what GitHub, SonarQube and DefectDojo show.

    ``helpUri`` links the tool's page for the rule (:mod:`secgate.ruledocs`);
    ``tags`` carry the CWE both as written ("CWE-943", which DefectDojo reads)
    and as GitHub's ``external/cwe/cwe-943``, and the OWASP category.
    """
    message = finding.message or finding.rule_id
    cwe_tags = [finding.cwe, f"external/cwe/{finding.cwe.lower()}"] if finding.cwe else []
    tags = ["security", *cwe_tags, *([finding.owasp] if finding.owasp else [])]
    fix = finding.help or "See the rule's documentation (helpUri)."
    return {
        "id": finding.rule_id,
        "name": finding.rule_id,
        "shortDescription": {"text": _first_sentence(message)},
        "fullDescription": {"text": f"{message} Fix: {fix}"},
        "help": {"text": fix},
        "helpUri": ruledocs.help_uri(finding),
        "defaultConfiguration": {"level": level(finding.severity)},
        "properties": {"tags": tags, "security-severity": security_severity(finding.severity)},
    }


def _first_sentence(text: str, limit: int = 200) -> str:
    """The rule's one-line summary: up to the first full stop, at most ``limit`` characters."""
    head, dot, _ = text.partition(". ")
    return (head + dot.strip())[:limit]


def security_severity(severity: Severity) -> str:
    """The 0-10 score GitHub uses to label alerts critical/high/medium/low."""
    return {
        Severity.CRITICAL: "9.5",
        Severity.HIGH: "8.0",
        Severity.MEDIUM: "5.5",
        Severity.LOW: "3.0",
        Severity.INFO: "0.0",
    }[severity]


def result(
    finding: Finding, rule_index: int, waiver: Waiver | None, blocking: set[str], root: Path
) -> JsonObject:
    """One finding as a SARIF result (located by file when it has one, else logically)."""
    entry: JsonObject = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": {"text": finding.message or finding.rule_id},
        "locations": [location(finding, root)],
        "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
        "properties": {
            "stage": finding.stage,
            "severity": finding.severity.name.lower(),
            "confidence": finding.confidence.name.lower(),
            "blocking": finding.fingerprint in blocking,
        },
    }
    if waiver is not None:
        why = f"{waiver.reason} (owner {waiver.owner}, expires {waiver.expires})"
        entry["suppressions"] = [{"kind": "external", "status": "accepted", "justification": why}]
    return entry


# GitHub code scanning rejects a whole SARIF file if one result has no file location.
# A finding without a file (a DAST URL, say) is anchored to the file that describes what
# was scanned, and keeps its real location as a logical location.
ANCHOR_FILES: dict[str, tuple[str, ...]] = {
    "dast": ("openapi.json", "pyproject.toml"),
    "sca": ("requirements/runtime.txt", "pyproject.toml"),
}
DEFAULT_ANCHOR = "pyproject.toml"


def anchor_file(root: Path | None, stage: str) -> str:
    """The repo file a location-less finding of ``stage`` is shown on."""
    candidates = ANCHOR_FILES.get(stage, (DEFAULT_ANCHOR,))
    if root is not None:
        for candidate in candidates:
            if (root / candidate).is_file():
                return candidate
    return candidates[-1]


def location(finding: Finding, root: Path | None = None) -> JsonObject:
    if finding.path:
        physical: JsonObject = {"artifactLocation": {"uri": finding.path}}
        if finding.line:
            physical["region"] = {"startLine": finding.line}
        return {"physicalLocation": physical}
    return {
        "physicalLocation": {"artifactLocation": {"uri": anchor_file(root, finding.stage)}},
        "logicalLocations": [{"fullyQualifiedName": finding.location}],
    }


def not_run(result: StageResult) -> JsonObject:
    """A stage that did not run is recorded as a failed invocation, not as silence."""
    return {
        "tool": {"driver": {"name": f"secgate-{result.stage}", "rules": []}},
        "automationDetails": {"id": f"secgate/stage-{result.stage}/"},
        "invocations": [
            {
                "executionSuccessful": False,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": result.error or "stage did not run"}}
                ],
            }
        ],
        "results": [],
    }

"""The numbers every human-facing output shows: one row per stage, waive hints.

The console table, summary.md and report.html are all built from these, so
they cannot disagree about what failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from secgate.gate import GateVerdict
from secgate.model import Finding, Severity, StageResult

SEVERITIES: tuple[Severity, ...] = tuple(sorted(Severity, reverse=True))


@dataclass(frozen=True)
class StageRow:
    stage: str
    tools: str
    counts: dict[Severity, int]
    verdict: str  # "pass", "FAIL" or "NOT RUN"
    notes: list[str]
    seconds: float


def stage_rows(results: list[StageResult], verdict: GateVerdict) -> list[StageRow]:
    passed = {s.stage: s.passed for s in verdict.stages}
    rows = []
    for result in results:
        counts = {sev: sum(1 for f in result.findings if f.severity == sev) for sev in SEVERITIES}
        if not result.ran:
            status = "NOT RUN"
        else:
            status = "pass" if passed.get(result.stage, False) else "FAIL"
        notes = [*result.notes, *([f"error: {result.error}"] if result.error else [])]
        tools = ", ".join(sorted(result.tool_versions)) or "-"
        rows.append(StageRow(result.stage, tools, counts, status, notes, result.seconds))
    return rows


def waive_hint(finding: Finding) -> str:
    """The YAML entry a reviewer would add to security/waivers.yml to accept a finding."""
    return (
        f"- fingerprint: {finding.fingerprint}\n"
        f"  stage: {finding.stage}\n"
        f"  tool: {finding.tool}\n"
        f"  rule: {finding.rule_id}\n"
        f"  reason: <why this is acceptable>\n"
        f"  owner: <team or person>\n"
        f"  expires: <YYYY-MM-DD, at most 90 days out>"
    )

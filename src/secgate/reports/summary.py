"""The numbers every human-facing output shows: one row per stage, waive hints.

The console table, summary.md and report.html are all built from these, so
they cannot disagree about what failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from secgate.controls import Verdict, judge
from secgate.gate import GateVerdict
from secgate.model import Finding, Severity, StageResult
from secgate.pipeline import RunInfo

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


def control_verdicts(
    info: RunInfo, results: list[StageResult], verdict: GateVerdict
) -> list[Verdict]:
    """Each control of security/controls.yml judged by this run's tests and stages."""
    stages = {row.stage: row.verdict for row in stage_rows(results, verdict)}
    outcomes = info.test_results.outcomes if info.test_results is not None else None
    return judge(info.controls, outcomes, stages)


def controls_line(info: RunInfo, verdicts: list[Verdict]) -> str:
    """One line for the first screen: how many controls this run proved."""
    tests = info.test_results.summary() if info.test_results else "tests: none given to this run"
    if not verdicts:
        return f"controls: none listed; {tests}"
    unproven = [v.control.id for v in verdicts if not v.proven]
    head = f"controls: {len(verdicts) - len(unproven)} of {len(verdicts)} proven by this run"
    return f"{head} (unproven: {', '.join(unproven)}); {tests}" if unproven else f"{head}; {tests}"


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

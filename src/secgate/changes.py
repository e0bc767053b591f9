"""What changed since the previous run: findings new in this run, fixed since, still open.

Every run writes ``findings.json`` (each finding's fingerprint, stage, rule,
location and what the gate made of it). The next run compares its findings
with that file, stage by stage, and only for stages that ran both times: a
stage that did not run fixed nothing. Locally the previous run is the one
``security/reports/latest`` pointed at; CI passes ``--previous DIR`` with the
last run on main.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secgate.gate import GateVerdict
from secgate.model import Finding

FINDINGS_FILE = "findings.json"


@dataclass(frozen=True)
class Changes:
    """This run's findings against the previous run's, for the stages both ran."""

    previous_run: str | None  # None: nothing to compare with
    new: list[dict[str, str]] = field(default_factory=list)
    fixed: list[dict[str, str]] = field(default_factory=list)
    still_open: list[dict[str, str]] = field(default_factory=list)
    compared_stages: list[str] = field(default_factory=list)
    note: str = ""

    def summary(self) -> str:
        if self.previous_run is None:
            return f"since the previous run: not compared ({self.note})"
        stages = ", ".join(self.compared_stages) or "none in common"
        return (
            f"since the previous run {self.previous_run} (stages {stages}): "
            f"{len(self.new)} new, {len(self.fixed)} fixed, {len(self.still_open)} still open"
        )


def findings_document(run_id: str, stages: list[str], verdict: GateVerdict) -> dict[str, Any]:
    """The content of findings.json: enough to diff runs, nothing a scanner did not report."""
    entries = []
    for stage in verdict.stages:
        for status, findings in (
            ("blocking", stage.blocking),
            ("waived", stage.waived),
            ("below threshold", stage.below_threshold),
        ):
            entries += [_entry(f, status) for f in findings]
    ran = [s.stage for s in verdict.stages if s.ran]
    return {"run_id": run_id, "stages_requested": stages, "stages_ran": ran, "findings": entries}


def _entry(finding: Finding, status: str) -> dict[str, str]:
    return {
        "fingerprint": finding.fingerprint,
        "stage": finding.stage,
        "tool": finding.tool,
        "rule": finding.rule_id,
        "severity": finding.severity.name.lower(),
        "location": finding.location,
        "gate": status,
    }


def compare(current: dict[str, Any], previous_dir: Path | None) -> Changes:
    """Diff this run's findings document with the one in ``previous_dir``."""
    if previous_dir is None:
        return Changes(None, note="no previous run")
    try:
        previous = json.loads((previous_dir / FINDINGS_FILE).read_text(encoding="utf-8"))
        before = {f["fingerprint"]: f for f in previous["findings"]}
        stages_before = set(previous["stages_ran"])
    except (OSError, ValueError, KeyError, TypeError):
        return Changes(None, note=f"{previous_dir.name} has no readable {FINDINGS_FILE}")
    stages = sorted(stages_before & set(current["stages_ran"]))
    now = {f["fingerprint"]: f for f in current["findings"] if f["stage"] in stages}
    before = {fp: f for fp, f in before.items() if f.get("stage") in stages}
    return Changes(
        previous_run=str(previous.get("run_id", previous_dir.name)),
        new=[now[fp] for fp in sorted(now.keys() - before.keys())],
        fixed=[before[fp] for fp in sorted(before.keys() - now.keys())],
        still_open=[now[fp] for fp in sorted(now.keys() & before.keys())],
        compared_stages=stages,
    )

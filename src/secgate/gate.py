"""The merge gate: stage results + policy + waivers → pass or fail, with reasons.

:func:`evaluate` is the whole decision. It fails when:

* a stage could not run (missing tool, crash): an unscanned tree is not clean;
* a finding meets its stage's policy threshold and no valid waiver covers it;
* a waiver has expired (even if its finding is gone: the file must be tidied);
* a waiver matched no finding in a run of its stage (stale waivers hide
  nothing today but would silently hide a different problem tomorrow);
* the SCA stage ran on advisory data older than the policy allows and no valid
  acknowledgement accepts it, or an acknowledgement is expired or too long
  (:mod:`secgate.freshness`). The SCA stage then shows as failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from secgate import freshness
from secgate.model import Finding, StageResult
from secgate.policy import Policy
from secgate.waivers import Waiver


@dataclass(frozen=True)
class StageVerdict:
    """How one stage fared at the gate."""

    stage: str
    ran: bool
    passed: bool
    blocking: list[Finding]
    waived: list[Finding]
    below_threshold: list[Finding]
    error: str | None = None


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision and everything a human needs to act on it."""

    passed: bool
    stages: list[StageVerdict]
    expired_waivers: list[Waiver] = field(default_factory=list)
    unused_waivers: list[Waiver] = field(default_factory=list)
    used_waivers: list[Waiver] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    advisory_data: freshness.Freshness | None = None  # None when SCA did not run
    acknowledgement_problems: list[str] = field(default_factory=list)
    bundle_problems: list[str] = field(default_factory=list)  # secrets in the report bundle

    def with_bundle_problems(self, problems: list[str]) -> GateVerdict:
        """This verdict, failed by what was found in the report bundle (if anything)."""
        if not problems:
            return self
        return dataclasses.replace(
            self, passed=False, reasons=[*self.reasons, *problems], bundle_problems=problems
        )

    @property
    def blocking(self) -> list[Finding]:
        return [finding for stage in self.stages for finding in stage.blocking]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def evaluate(
    results: list[StageResult],
    policy: Policy,
    waivers: list[Waiver],
    today: dt.date,
    acks: Sequence[freshness.Acknowledgement] = (),
) -> GateVerdict:
    """Decide the gate for these stage results (see the module docstring for the rules)."""
    valid = {w.fingerprint: w for w in waivers if not w.expired(today)}
    expired = [w for w in waivers if w.expired(today)]
    data = freshness.check(results, policy.advisory_max_age_days, acks, today)
    matched: set[str] = set()
    stages: list[StageVerdict] = []
    for result in results:
        verdict = _stage_verdict(result, policy, valid)
        if result.stage == "sca" and data is not None and data.problem is not None:
            verdict = dataclasses.replace(verdict, passed=False)
        matched.update(f.fingerprint for f in result.findings)
        stages.append(verdict)
    ran = {r.stage for r in results if r.ran}
    unused = [
        w for w in waivers if w.fingerprint not in matched and (w.stage is None or w.stage in ran)
    ]
    used = [w for w in waivers if w.fingerprint in matched]
    ack_problems = freshness.ack_problems(acks, today)
    reasons = _reasons(stages, expired, unused)
    reasons += [data.problem] if data is not None and data.problem else []
    reasons += ack_problems
    return GateVerdict(
        passed=not reasons,
        stages=stages,
        expired_waivers=expired,
        unused_waivers=unused,
        used_waivers=used,
        reasons=reasons,
        advisory_data=data,
        acknowledgement_problems=ack_problems,
    )


def _stage_verdict(result: StageResult, policy: Policy, valid: dict[str, Waiver]) -> StageVerdict:
    threshold = policy.for_stage(result.stage)
    blocking: list[Finding] = []
    waived: list[Finding] = []
    below: list[Finding] = []
    for finding in result.findings:
        if not threshold.blocks(finding):
            below.append(finding)
        elif finding.fingerprint in valid:
            waived.append(finding)
        else:
            blocking.append(finding)
    return StageVerdict(
        stage=result.stage,
        ran=result.ran,
        passed=result.ran and not blocking,
        blocking=blocking,
        waived=waived,
        below_threshold=below,
        error=result.error,
    )


def _reasons(stages: list[StageVerdict], expired: list[Waiver], unused: list[Waiver]) -> list[str]:
    reasons = [
        f"stage {s.stage} did not run: {s.error or 'no reason given'}" for s in stages if not s.ran
    ]
    reasons += [
        f"{f.stage}: {f.tool} {f.rule_id} at {f.location}" for s in stages for f in s.blocking
    ]
    reasons += [f"waiver {w.fingerprint[:12]} ({w.owner}) expired on {w.expires}" for w in expired]
    reasons += [f"waiver {w.fingerprint[:12]} ({w.owner}) matched no finding" for w in unused]
    return reasons

"""The gate's policy: per stage, which findings block a merge.

``security/policy.yml`` says, for each stage, the lowest severity and
confidence that fails the gate. A stage missing from the file gets the
defaults below, so a new stage is gated from day one. It also says how old
the SCA stage's advisory data may be (``advisory_data.max_age_days``, see
:mod:`secgate.freshness`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from secgate.model import Confidence, Finding, Severity


class PolicyError(ValueError):
    """The policy file cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class StagePolicy:
    """Findings at or above both thresholds fail the gate."""

    min_severity: Severity = Severity.MEDIUM
    min_confidence: Confidence = Confidence.LOW

    def blocks(self, finding: Finding) -> bool:
        return finding.severity >= self.min_severity and finding.confidence >= self.min_confidence


DEFAULT_ADVISORY_MAX_AGE_DAYS = 7


@dataclass(frozen=True)
class Policy:
    """Thresholds per stage; stages not listed use ``default``."""

    stages: dict[str, StagePolicy] = field(default_factory=dict)
    default: StagePolicy = field(default_factory=StagePolicy)
    advisory_max_age_days: int = DEFAULT_ADVISORY_MAX_AGE_DAYS

    def for_stage(self, stage: str) -> StagePolicy:
        return self.stages.get(stage, self.default)


DEFAULT_POLICY = Policy(
    stages={
        "sast": StagePolicy(Severity.MEDIUM, Confidence.MEDIUM),
        "sca": StagePolicy(Severity.INFO, Confidence.LOW),
        "secrets": StagePolicy(Severity.INFO, Confidence.LOW),
        "dast": StagePolicy(Severity.MEDIUM, Confidence.LOW),
        "config": StagePolicy(Severity.MEDIUM, Confidence.LOW),
    }
)

_STAGE_KEYS = {"min_severity", "min_confidence"}
_TOP_KEYS = {"stages", "advisory_data"}


def load_policy(path: Path) -> Policy:
    """Read policy.yml; a missing file means the defaults, a malformed one is an error."""
    if not path.exists():
        return DEFAULT_POLICY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise PolicyError(f"{path}: expected a mapping with a 'stages:' mapping")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise PolicyError(f"{path}: unknown keys {unknown}; known: {sorted(_TOP_KEYS)}")
    stages = dict(DEFAULT_POLICY.stages)
    for stage, rules in data["stages"].items():
        stages[str(stage)] = _stage_policy(path, str(stage), rules)
    return Policy(
        stages=stages,
        default=DEFAULT_POLICY.default,
        advisory_max_age_days=_max_age_days(path, data.get("advisory_data")),
    )


def _max_age_days(path: Path, rules: Any) -> int:
    """``advisory_data: {max_age_days: N}``; absent means the default, 7 days."""
    if rules is None:
        return DEFAULT_ADVISORY_MAX_AGE_DAYS
    value = rules.get("max_age_days") if isinstance(rules, dict) else None
    if not isinstance(rules, dict) or set(rules) != {"max_age_days"}:
        raise PolicyError(f"{path}: advisory_data may only set max_age_days")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"{path}: advisory_data.max_age_days must be a whole number >= 0")
    return value


def _stage_policy(path: Path, stage: str, rules: Any) -> StagePolicy:
    if not isinstance(rules, dict) or not set(rules) <= _STAGE_KEYS:
        raise PolicyError(f"{path}: stages.{stage} may only set {sorted(_STAGE_KEYS)}")
    try:
        return StagePolicy(
            min_severity=Severity.parse(str(rules.get("min_severity", "medium"))),
            min_confidence=Confidence.parse(str(rules.get("min_confidence", "low"))),
        )
    except KeyError as exc:
        raise PolicyError(f"{path}: stages.{stage}: unknown level {exc}") from exc

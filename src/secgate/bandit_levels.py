"""Per-test raises of bandit's severity and confidence (``security/bandit-levels.yml``).

bandit rates some tests below the SAST thresholds (severity and confidence
at least medium) although what they find is a real weakness here: ``random``
for a secret (B311) is *low* severity, an SQL string built from input (B608)
and an HTTP call without a timeout (B113) are *low* confidence. A reviewed
file raises those tests, with a reason each, so they block.

The file can only make the gate stricter: a level below bandit's own never
lowers a finding (accepting a finding is what waivers are for). An unknown
key, test id or level makes the SAST stage fail rather than run weaker.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from secgate.model import Confidence, Finding, Severity

FILE_NAME = "bandit-levels.yml"
_TEST_ID = re.compile(r"^B\d{3}$")
_KEYS = {"severity", "confidence", "reason"}


@dataclass(frozen=True)
class LevelRaise:
    """The least severity/confidence a bandit test's findings get, and why."""

    test_id: str
    reason: str
    severity: Severity | None = None
    confidence: Confidence | None = None


def load(path: Path) -> dict[str, LevelRaise]:
    """The raises in ``path`` by test id; no file means none. Raises ValueError naming the entry."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or set(data) - {"raise"}:
        raise ValueError(f"{path.name}: expected one top-level key, raise:")
    entries = data.get("raise") or {}
    if not isinstance(entries, dict):
        raise ValueError(f"{path.name}: raise: must map bandit test ids to entries")
    return {str(test_id): _entry(path.name, str(test_id), e) for test_id, e in entries.items()}


def _entry(name: str, test_id: str, entry: object) -> LevelRaise:
    where = f"{name}: {test_id}"
    if not _TEST_ID.match(test_id):
        raise ValueError(f"{where}: not a bandit test id (like B311)")
    if not isinstance(entry, dict) or set(entry) - _KEYS:
        raise ValueError(f"{where}: allowed keys are {', '.join(sorted(_KEYS))}")
    reason = str(entry.get("reason") or "").strip()
    if not reason:
        raise ValueError(f"{where}: say why (reason:)")
    if "severity" not in entry and "confidence" not in entry:
        raise ValueError(f"{where}: raise severity, confidence or both")
    try:
        severity = Severity.parse(str(entry["severity"])) if "severity" in entry else None
        confidence = Confidence.parse(str(entry["confidence"])) if "confidence" in entry else None
    except KeyError as error:
        raise ValueError(f"{where}: unknown level {error}") from None
    return LevelRaise(test_id, reason, severity, confidence)


def apply(finding: Finding, test_id: str, raises: dict[str, LevelRaise]) -> Finding:
    """``finding`` with its test's raise applied: never lower than bandit reported."""
    entry = raises.get(test_id)
    if entry is None:
        return finding
    severity = max(finding.severity, entry.severity or finding.severity)
    confidence = max(finding.confidence, entry.confidence or finding.confidence)
    if (severity, confidence) == (finding.severity, finding.confidence):
        return finding
    note = (
        f" [raised by security/{FILE_NAME} from bandit's "
        f"{finding.severity.name.lower()}/{finding.confidence.name.lower()}]"
    )
    return dataclasses.replace(
        finding, severity=severity, confidence=confidence, message=finding.message + note
    )

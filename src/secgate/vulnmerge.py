"""One finding per vulnerability when two sources report it under different names.

The advisory database says PYSEC-2019-217 where pip-audit (the PyPI service)
may say GHSA-462w-v97r-4m45 for the same flaw; both list the other names as
aliases. Two findings for one flaw would mean two waivers for one risk, so
reports from the second source that share any id or alias with a report of the
first source, for the same package, are dropped, and a note says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secgate.model import Finding


@dataclass(frozen=True)
class Reported:
    """A vulnerability finding with the names it goes by (its id and its aliases)."""

    finding: Finding
    package: str  # PEP 503 normalised
    ids: frozenset[str]


def merge(
    primary: Sequence[Reported], secondary: Sequence[Reported]
) -> tuple[list[Finding], list[str]]:
    """Every primary finding, plus the secondary ones no primary finding already covers.

    Returns the findings and one note per dropped duplicate. The primary
    source's id is kept, so a finding's fingerprint (and its waiver) does not
    change with whether the second source ran.
    """
    findings = [report.finding for report in primary]
    notes: list[str] = []
    for report in secondary:
        same = next(
            (kept for kept in primary if kept.package == report.package and kept.ids & report.ids),
            None,
        )
        if same is None:
            findings.append(report.finding)
        else:
            notes.append(
                f"{report.finding.tool} {report.finding.rule_id} ({report.package}) is "
                f"{same.finding.rule_id}: reported once"
            )
    return findings, notes

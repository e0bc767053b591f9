"""The vocabulary every scan stage speaks: findings, what a stage returns, stage results.

Each stage (a module or package under :mod:`secgate.stages`) turns its tools'
native output into :class:`Finding` objects and returns them in a
:class:`ScanOutput`; :func:`secgate.pipeline.run_stage` makes that a
:class:`StageResult`. The gate (:mod:`secgate.gate`) only ever sees these, so
policy and waivers work the same for bandit, semgrep, pip-audit,
detect-secrets, schemathesis, wapiti and ZAP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path


class Severity(IntEnum):
    """Ordered so policies can say "at least medium"."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Map a tool's severity word (any case; 'warning'/'error' too) to ours."""
        aliases = {
            "warning": "medium",
            "error": "high",
            "moderate": "medium",
            "informational": "info",
        }
        word = text.strip().lower()
        return cls[aliases.get(word, word).upper()]


class Confidence(IntEnum):
    """How sure the tool is; tools without a notion of confidence report HIGH."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2

    @classmethod
    def parse(cls, text: str) -> Confidence:
        return cls[text.strip().upper()]


@dataclass(frozen=True)
class Finding:
    """One problem a tool reported, in a tool-independent shape.

    ``fingerprint`` is stable across runs and line shifts (it hashes the rule,
    the file or URL and a normalised snippet, never a line number), so waivers
    keep matching and SARIF consumers (GitHub code scanning, DefectDojo) dedupe.
    """

    stage: str  # "sast", "sca", "secrets", "dast", "config"
    tool: str  # "bandit", "semgrep", "pip-audit", "osv-offline", ...
    rule_id: str
    severity: Severity
    confidence: Confidence
    message: str
    location: str  # "path/to/file.py:42" or "GET https://127.0.0.1:8443/api/v1/events"
    fingerprint: str
    help: str = ""  # how to fix it, one or two sentences
    owasp: str | None = None  # e.g. "A03:2021-Injection"
    cwe: str | None = None  # e.g. "CWE-943"
    path: str | None = None  # repo-relative file, when there is one (for SARIF)
    line: int | None = None
    help_uri: str | None = None  # the tool's page for this rule, when it names one


def fingerprint(*parts: str) -> str:
    """Stable SHA-256 over the parts that identify a finding (not line numbers)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class ScanOutput:
    """What a stage, or one tool inside it, returns: findings and the evidence around them.

    Each tool adapter builds its own and returns it; the stage combines them
    (:func:`combine`) and returns that. ``errors`` says what could not finish:
    a stage with any error did not run, whatever else it found, because a
    half-done scan must never look like a clean one.
    """

    findings: list[Finding] = field(default_factory=list)
    tool_versions: dict[str, str] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)  # native reports, SARIF, SBOM ...
    notes: list[str] = field(default_factory=list)  # e.g. "ZAP: not run (no ZAP_API_URL)"
    metadata: dict[str, str] = field(default_factory=dict)  # e.g. advisory source and date
    errors: list[str] = field(default_factory=list)


def combine(outputs: Iterable[ScanOutput]) -> ScanOutput:
    """One output holding all of ``outputs``, in order (later metadata keys win)."""
    combined = ScanOutput()
    for output in outputs:
        combined.findings.extend(output.findings)
        combined.tool_versions.update(output.tool_versions)
        combined.artifacts.extend(output.artifacts)
        combined.notes.extend(output.notes)
        combined.metadata.update(output.metadata)
        combined.errors.extend(output.errors)
    return combined


@dataclass
class StageResult:
    """What one stage did: whether it ran, with which tools, what it found.

    Built by :func:`secgate.pipeline.run_stage` from the stage's
    :class:`ScanOutput` (see :meth:`from_output`); the gate and the reports
    read it.
    """

    stage: str
    ran: bool
    findings: list[Finding] = field(default_factory=list)
    tool_versions: dict[str, str] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)  # native reports, SARIF, SBOM ...
    error: str | None = None  # why the stage could not run (a non-run stage fails the gate)
    notes: list[str] = field(default_factory=list)  # e.g. "ZAP: not run (no ZAP_API_URL)"
    metadata: dict[str, str] = field(default_factory=dict)  # e.g. advisory source and date
    seconds: float = 0.0

    @classmethod
    def from_output(cls, stage: str, output: ScanOutput, seconds: float) -> StageResult:
        """The stage ran only if nothing in it failed; every failure is listed in ``error``."""
        return cls(
            stage=stage,
            ran=not output.errors,
            findings=list(output.findings),
            tool_versions=dict(output.tool_versions),
            artifacts=list(output.artifacts),
            error="; ".join(output.errors) or None,
            notes=list(output.notes),
            metadata=dict(output.metadata),
            seconds=seconds,
        )


@dataclass(frozen=True)
class ScanContext:
    """Where a stage reads from and writes to."""

    root: Path  # the project tree being scanned
    report_dir: Path  # security/reports/<run>/ : stages write native output here
    security_dir: Path  # the project's security/ config (rules, policy, waivers)
    tools_bin: Path  # directory holding the scanner executables (.venv-scan/bin)
    offline: bool = True
    options: dict[str, str] = field(default_factory=dict)  # e.g. base_url for DAST
    # Values the run handled as secrets (the DAST token): held in memory only, so the
    # report bundle can be searched for them (secgate.bundle). Never written anywhere.
    secrets_used: set[str] = field(default_factory=set, repr=False, compare=False)

"""Secrets stage: what is, or was, committed; against the audited ``.secrets.baseline``.

The baseline lists every secret-looking string we have looked at and judged
(``is_secret: false`` = audited false positive). The stage scans a *copy* of
the baseline, so the committed file is never rewritten by a scan, then
compares: anything new, confirmed real, or not yet audited is a finding.
It also scans the lines recent commits added (:mod:`.secrets_history`: a
secret deleted again is still in the repository) and reports inline scanner
suppressions in the same files (:mod:`secgate.suppressions`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from secgate import git, suppressions
from secgate.model import (
    Confidence,
    Finding,
    ScanContext,
    ScanOutput,
    Severity,
    combine,
    fingerprint,
)
from secgate.source import unique_fingerprints
from secgate.stages.secrets_history import hashed_secrets, scan_history
from secgate.tools import ToolFailed, run_tool

STAGE = "secrets"
TOOL = "detect-secrets"
BASELINE = ".secrets.baseline"
CWE = "CWE-798"
OWASP = "A07:2021-Identification and Authentication Failures"

Key = tuple[str, str, str]  # (filename, secret type, hashed secret)

FIX_NEW = (
    "Remove the secret, rotate it (it is in git history now) and read it from Vault. "
    "If it is a false positive: detect-secrets scan --baseline .secrets.baseline, then "
    "detect-secrets audit .secrets.baseline and commit the baseline."
)
FIX_CONFIRMED = "The baseline marks this as a real secret: remove it from the tree and rotate it."
FIX_UNAUDITED = "Audit it: detect-secrets audit .secrets.baseline, then commit the baseline."


def run(ctx: ScanContext) -> ScanOutput:
    """The tree, then the history, then inline suppressions in the tree's files."""
    committed, excludes, tree = scan_tree(ctx)
    files = files_to_check(ctx.root, excludes)
    inline = ScanOutput(
        findings=unique_fingerprints(suppressions.find(ctx.root, files)),
        metadata={"secrets.suppression_files_checked": str(len(files))},
    )
    past = scan_history(ctx, committed, excludes, hashed_secrets(_load(_report_path(ctx))))
    return combine([tree, past, inline])


def _report_path(ctx: ScanContext) -> Path:
    return ctx.report_dir / "detect-secrets.json"


def scan_tree(ctx: ScanContext) -> tuple[dict[str, Any], list[str], ScanOutput]:
    """Scan the tree with the baseline's own settings; report what the baseline does not cover.

    Returns the committed baseline and the exclude patterns too: the history
    scan and the suppression check use the same ones.
    """
    baseline_path = ctx.root / BASELINE
    if not baseline_path.is_file():
        raise ToolFailed(
            f"no {BASELINE} at {ctx.root}: create it with `detect-secrets scan --all-files "
            "--exclude-files ... > .secrets.baseline` and audit it (see security/README.md)"
        )
    scanned = _report_path(ctx)
    shutil.copyfile(baseline_path, scanned)
    committed = _load(baseline_path)
    # --baseline reuses the plugins and filters recorded in the baseline.
    excludes = exclude_patterns(ctx, committed)
    args = ["scan", "--all-files", "--baseline", str(scanned.absolute())]
    args += [arg for pattern in excludes for arg in ("--exclude-files", pattern)]
    run_tool(ctx, TOOL, [*args, "--", *_paths_to_scan(ctx.root, excludes)])
    report = _load(scanned)
    baseline = _entries(committed)
    classified = [
        _finding(key, entry, baseline.get(key)) for key, entry in sorted(_entries(report).items())
    ]
    return (
        committed,
        excludes,
        ScanOutput(
            findings=[f for f in classified if f.rule_id != "audited-false-positive"],
            # The scan rewrote the copy, so its "version" is the detect-secrets that just ran.
            tool_versions={TOOL: str(report.get("version", "unknown"))},
            artifacts=[scanned],
            metadata={"secrets.baseline_entries": str(len(baseline))},
        ),
    )


def exclude_patterns(ctx: ScanContext, baseline: dict[str, Any]) -> list[str]:
    """--exclude-files patterns: the baseline's own plus our report directory.

    detect-secrets replaces (does not extend) the baseline's patterns when any
    --exclude-files is given, so all of them are passed again. Reports are never
    scanned: they quote findings, wherever --report-dir points.
    """
    patterns: list[str] = []
    for used in baseline.get("filters_used", []):
        if used.get("path") == "detect_secrets.filters.regex.should_exclude_file":
            patterns += [str(p) for p in used.get("pattern", [])]
    reports = ctx.report_dir.absolute().parent
    if reports.is_relative_to(ctx.root.absolute()):
        patterns.append(f"^{re.escape(reports.relative_to(ctx.root.absolute()).as_posix())}/")
    return patterns


def _paths_to_scan(root: Path, patterns: list[str]) -> list[str]:
    """What could be committed (git's view, .gitignore applied), minus the excludes.

    Outside a git checkout: the top-level entries that are not excluded. Either
    way detect-secrets never walks .venv*/.git (seconds) and is handed no path
    the baseline excludes.
    """
    compiled = [re.compile(p) for p in patterns]
    files = git.committable_files(root)
    if files is None:
        entries = sorted(root.iterdir())
        files = [f"{e.name}/" if e.is_dir() else e.name for e in entries]
    kept = [name for name in files if not any(p.search(name) for p in compiled)]
    return [name.rstrip("/") for name in kept]


def files_to_check(root: Path, patterns: list[str]) -> list[str]:
    """Every file the tree scan covers, one by one (outside git: walked, excludes pruned)."""
    compiled = [re.compile(p) for p in patterns]
    files = git.committable_files(root)
    if files is None:
        files = []
        for directory, dirs, names in os.walk(root):
            relative = Path(directory).relative_to(root).as_posix()
            prefix = "" if relative == "." else f"{relative}/"
            dirs[:] = sorted(d for d in dirs if not _excluded(f"{prefix}{d}/", compiled))
            files += [f"{prefix}{name}" for name in sorted(names)]
    return [name for name in files if not _excluded(name, compiled)]


def _excluded(name: str, compiled: list[re.Pattern[str]]) -> bool:
    return any(p.search(name) for p in compiled)


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ToolFailed(f"{path}: not a detect-secrets baseline")
    return data


def _entries(report: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    entries: dict[Key, dict[str, Any]] = {}
    for filename, items in (report.get("results") or {}).items():
        for item in items:
            key = (str(filename), str(item["type"]), str(item["hashed_secret"]))
            entries[key] = item
    return entries


def _finding(key: Key, entry: dict[str, Any], audited: dict[str, Any] | None) -> Finding:
    """Classify one secret against the committed baseline."""
    filename, kind, hashed = key
    if audited is None:
        rule, severity, message, fix = "new-secret", Severity.HIGH, "not in the baseline", FIX_NEW
    elif audited.get("is_secret") is True:
        rule, severity, message, fix = (
            "confirmed-secret",
            Severity.HIGH,
            "audited as a REAL secret",
            FIX_CONFIRMED,
        )
    elif "is_secret" not in audited:
        rule, severity, message, fix = (
            "unaudited-secret",
            Severity.MEDIUM,
            "in the baseline but never audited",
            FIX_UNAUDITED,
        )
    else:
        rule, severity, message, fix = "audited-false-positive", Severity.INFO, "", ""
    line = int(entry.get("line_number") or 0) or None
    return Finding(
        stage=STAGE,
        tool=TOOL,
        rule_id=rule,
        severity=severity,
        confidence=Confidence.MEDIUM,
        message=f"{kind} {message}",
        location=f"{filename}:{line}" if line else filename,
        # The hash of the secret, not its line: stable, and it reveals nothing new.
        fingerprint=fingerprint(TOOL, kind, filename, hashed),
        help=fix,
        owasp=OWASP,
        cwe=CWE,
        path=filename,
        line=line,
    )

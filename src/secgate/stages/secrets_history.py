"""Secrets stage, history part: what past commits added, scanned like the tree.

The lines each commit added (:mod:`secgate.history`) are written to a private
temporary directory as ``<commit>/<path>`` and scanned by detect-secrets with
the committed baseline's own plugins and filters (a copy of the baseline with
no results, so every hit is reported). A secret still in the tree is the tree
scan's finding; one the baseline audits as a false positive (same hashed
secret) is not reported; any other is ``secret-in-history``: it was committed,
so it must be rotated, then waived in waivers.yml with the reason.

Options (``ctx.options``): ``secrets_history=branch`` (default: the commits
not on the main branch) or ``all`` (everything reachable from HEAD);
``secrets_base=REF`` (default: origin/main, else main).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secgate import git, history
from secgate.model import Confidence, Finding, ScanContext, ScanOutput, Severity, fingerprint
from secgate.tools import run_tool

STAGE = "secrets"
TOOL = "detect-secrets"
RULE = "secret-in-history"
MODES = ("branch", "all")
CWE = "CWE-798"
OWASP = "A07:2021-Identification and Authentication Failures"
FIX = (
    "It is in git history: rotate it (revoke the old value), then waive this finding in "
    "security/waivers.yml with the rotation as the reason. Not yet merged: you may instead "
    "rewrite the branch so no commit adds it. A false positive: waive it saying why."
)


def scan_history(
    ctx: ScanContext, baseline: dict[str, Any], excludes: list[str], in_tree: set[str]
) -> ScanOutput:
    """Scan the lines the chosen commits added; ``in_tree``: hashed secrets the tree scan saw."""
    mode = ctx.options.get("secrets_history", "branch")
    if mode not in MODES:
        return ScanOutput(errors=[f"secrets_history={mode!r}: use one of {', '.join(MODES)}"])
    if not git.is_checkout(ctx.root):
        return ScanOutput(notes=["secrets history: not scanned (not a git checkout): tree only"])
    if not git.resolves(ctx.root, "HEAD"):
        return ScanOutput(notes=["secrets history: no commits yet: tree only"])
    try:
        chosen, notes = history.commit_range(
            ctx.root, ctx.options.get("secrets_base"), whole=mode == "all"
        )
        commits = git.count_commits(ctx.root, chosen.revisions)
        added = history.added_lines(git.log_patches(ctx.root, chosen.revisions))
    except (history.HistoryUnavailable, git.GitFailed) as exc:
        return ScanOutput(errors=[f"secrets history: {exc}"])
    compiled = [re.compile(pattern) for pattern in excludes]
    kept = [item for item in added if not any(p.search(item.path) for p in compiled)]
    report_path = ctx.report_dir / "detect-secrets-history.json"
    results = _scan(ctx, baseline, kept, report_path)
    order = {item.commit: index for index, item in enumerate(added)}  # newest first
    findings = _findings(results, _audited_false_positives(baseline) | in_tree, order)
    notes.append(f"secrets history: {commits} commit(s) scanned ({chosen.description})")
    return ScanOutput(
        findings=findings,
        artifacts=[report_path],
        notes=notes,
        metadata={"secrets.history": chosen.description, "secrets.history_commits": str(commits)},
    )


def _scan(
    ctx: ScanContext, baseline: dict[str, Any], added: list[history.Added], report: Path
) -> dict[str, Any]:
    """detect-secrets over the added lines; its results keyed ``<commit>/<path>``.

    The report keeps only hashes (detect-secrets never writes a secret), so it
    is kept with the other artifacts; the added lines themselves live only in
    a 0700 temporary directory removed before returning.
    """
    settings = {**baseline, "results": {}}
    report.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    if not added:
        return {}
    with tempfile.TemporaryDirectory(prefix="secgate-history-") as tmp:
        top = Path(tmp)
        for item in added:
            target = _target(top, item)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as out:
                out.write("\n".join(item.lines) + "\n")
        args = ["scan", "--all-files", "--baseline", str(report.absolute()), "--", "."]
        run_tool(ctx, TOOL, args, cwd=top)
    data = json.loads(report.read_text(encoding="utf-8"))
    return dict(data.get("results") or {})


def _target(top: Path, item: history.Added) -> Path:
    """Where one commit's additions to one file go; never outside ``top``."""
    parts = [part for part in item.path.split("/") if part not in ("", ".", "..")]
    return top.joinpath(item.commit, *parts)


def _audited_false_positives(baseline: dict[str, Any]) -> set[str]:
    """Hashed secrets the baseline audits as not secret, in whichever file."""
    return {
        str(entry["hashed_secret"])
        for entries in (baseline.get("results") or {}).values()
        for entry in entries
        if entry.get("is_secret") is False
    }


def _findings(results: dict[str, Any], known: set[str], order: dict[str, int]) -> list[Finding]:
    """One finding per (type, file, secret), naming the oldest commit that added it.

    ``order``: each commit's place in git log's output, newest first.
    """
    found: dict[str, Finding] = {}
    oldest_first = sorted(results, key=lambda key: -order.get(str(key).partition("/")[0], 0))
    for key in oldest_first:
        entries = results[key]
        commit, _, path = str(key).partition("/")
        for entry in entries:
            hashed = str(entry["hashed_secret"])
            if hashed in known:
                continue
            finding = _finding(commit, path, str(entry["type"]), hashed)
            found.setdefault(finding.fingerprint, finding)
    return sorted(found.values(), key=lambda f: f.location)


def _finding(commit: str, path: str, kind: str, hashed: str) -> Finding:
    return Finding(
        stage=STAGE,
        tool=TOOL,
        rule_id=RULE,
        severity=Severity.HIGH,
        confidence=Confidence.MEDIUM,
        message=f"{kind} added in commit {commit[:12]} and no longer in the tree",
        location=f"{path} (commit {commit[:12]})",
        # Not the commit: a rebase must not invalidate the waiver of a rotated secret.
        fingerprint=fingerprint(TOOL, RULE, kind, path, hashed),
        help=FIX,
        owasp=OWASP,
        cwe=CWE,
        path=path,
    )


def hashed_secrets(report: dict[str, Any]) -> set[str]:
    """Every hashed secret in a detect-secrets report."""
    return {str(item["hashed_secret"]) for item in _all_entries(report)}


def _all_entries(report: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for entries in (report.get("results") or {}).values():
        yield from entries

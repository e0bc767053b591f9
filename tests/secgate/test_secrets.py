"""Secrets stage: real detect-secrets against the fixture's committed baseline."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

from secgate_support import context, copy_fixture

from secgate.gate import evaluate
from secgate.model import Severity
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY

TODAY = dt.date(2026, 6, 1)
# Built at run time so no secret-shaped string is ever committed (not even in this test).
FAKE_AWS_KEY = "AKIA" + "QX7Z" + "M2PL" + "4RTY" + "8WNB"


def test_clean_tree_passes(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    baseline_before = (root / ".secrets.baseline").read_bytes()
    result = run_stage("secrets", context(root, tmp_path / "reports"))
    assert result.ran, result.error
    assert result.findings == []
    assert evaluate([result], DEFAULT_POLICY, [], TODAY).passed
    assert (root / ".secrets.baseline").read_bytes() == baseline_before, "scan rewrote baseline"


def test_secret_not_in_baseline_fails_the_gate(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    (root / "src" / "app" / "keys.py").write_text(
        f'"""Deploy keys."""\n\nAWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n', encoding="utf-8"
    )
    result = run_stage("secrets", context(root, tmp_path / "reports"))
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    found = {(f.rule_id, f.location, f.severity) for f in verdict.blocking}
    assert ("new-secret", "src/app/keys.py:3", Severity.HIGH) in found
    assert all(FAKE_AWS_KEY not in f.message for f in verdict.blocking)


def test_unaudited_and_confirmed_baseline_entries_fail(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    (root / "src" / "app" / "keys.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n', encoding="utf-8"
    )
    ctx = context(root, tmp_path / "first")
    run_stage("secrets", ctx)
    # Accept the scan's view as the new baseline without auditing it ...
    scanned = json.loads((ctx.report_dir / "detect-secrets.json").read_text(encoding="utf-8"))
    (root / ".secrets.baseline").write_text(json.dumps(scanned), encoding="utf-8")
    result = run_stage("secrets", context(root, tmp_path / "second"))
    assert {f.rule_id for f in result.findings} == {"unaudited-secret"}
    assert not evaluate([result], DEFAULT_POLICY, [], TODAY).passed
    # ... then audit it as a real secret: still a failure, now high.
    for items in scanned["results"].values():
        for item in items:
            item["is_secret"] = True
    (root / ".secrets.baseline").write_text(json.dumps(scanned), encoding="utf-8")
    result = run_stage("secrets", context(root, tmp_path / "third"))
    assert {(f.rule_id, f.severity) for f in result.findings} == {
        ("confirmed-secret", Severity.HIGH)
    }
    # Audited as a false positive: passes.
    for items in scanned["results"].values():
        for item in items:
            item["is_secret"] = False
    (root / ".secrets.baseline").write_text(json.dumps(scanned), encoding="utf-8")
    result = run_stage("secrets", context(root, tmp_path / "fourth"))
    assert result.findings == []


def test_missing_baseline_means_the_stage_did_not_run(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    (root / ".secrets.baseline").unlink()
    result = run_stage("secrets", context(root, tmp_path / "reports"))
    assert not result.ran
    assert result.error is not None
    assert ".secrets.baseline" in result.error
    assert not evaluate([result], DEFAULT_POLICY, [], TODAY).passed


def test_repository_baseline_is_fully_audited() -> None:
    repo_baseline = Path(__file__).resolve().parents[2] / ".secrets.baseline"
    data = json.loads(repo_baseline.read_text(encoding="utf-8"))
    unaudited = [
        (name, item["line_number"])
        for name, items in data["results"].items()
        for item in items
        if "is_secret" not in item
    ]
    assert unaudited == []


def test_baseline_exclude_patterns_and_report_dir_are_honoured(tmp_path: Path) -> None:
    """The clean fixture's baseline excludes build/ (as the repository's does)."""
    root = copy_fixture("clean", tmp_path)
    (root / "build").mkdir()
    (root / "build" / "keys.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n', encoding="utf-8")
    reports = root / "security" / "reports"
    (reports / "old-run").mkdir(parents=True)
    (reports / "old-run" / "quoted.txt").write_text(f"{FAKE_AWS_KEY}\n", encoding="utf-8")
    result = run_stage("secrets", context(root, reports / "new-run"))
    assert result.ran, result.error
    assert result.findings == []


def test_in_a_git_checkout_what_could_be_committed_is_scanned(tmp_path: Path) -> None:
    """Untracked files count (``git add .`` would take them); gitignored ones do not."""
    root = copy_fixture("clean", tmp_path)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("local/\n", encoding="utf-8")
    (root / "local").mkdir()
    (root / "local" / "keys.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n', encoding="utf-8")
    (root / "src" / "app" / "new.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n', encoding="utf-8")
    result = run_stage("secrets", context(root, tmp_path / "reports"))
    assert {f.location for f in result.findings} == {"src/app/new.py:1"}

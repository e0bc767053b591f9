"""The report's first screen: which gate, which tree, which configuration, what changed since."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from secgate_support import FIXTURES, REPO, TOOLS_BIN, copy_fixture, git

from secgate import changes as run_changes
from secgate import provenance
from secgate.gate import evaluate
from secgate.model import Confidence, Finding, Severity, StageResult, fingerprint
from secgate.policy import DEFAULT_POLICY


def test_provenance_names_the_tree_state_and_hashes_the_configuration(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(REPO / "security", root / "security", ignore=shutil.ignore_patterns("reports"))
    assert provenance.collect(root).tree == "unknown (not a git checkout)"
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    clean = provenance.collect(root)
    assert clean.tree == "clean (no uncommitted change)"
    policy = root / "security" / "policy.yml"
    assert clean.config["security/policy.yml"] == hashlib.sha256(policy.read_bytes()).hexdigest()
    assert clean.config[".secrets.baseline"] == "absent"
    assert clean.secgate.startswith(f"{provenance.SECGATE_VERSION} (code sha256 ")
    policy.write_text(policy.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    rule = root / "security" / "semgrep" / "flask-debug.yml"
    rule.write_text(rule.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    edited = provenance.collect(root)
    assert edited.tree == (
        "2 uncommitted change(s): security/policy.yml, security/semgrep/flask-debug.yml"
    )
    assert edited.config["security/policy.yml"] != clean.config["security/policy.yml"]
    assert edited.config["security/semgrep/"] != clean.config["security/semgrep/"]
    assert edited.config["security/waivers.yml"] == clean.config["security/waivers.yml"]


def finding(stage: str, rule: str) -> Finding:
    return Finding(
        stage=stage, tool="semgrep", rule_id=rule, severity=Severity.HIGH,
        confidence=Confidence.HIGH, message="m", location=f"src/{rule}.py:1",
        fingerprint=fingerprint(stage, rule),
    )  # fmt: skip


def document(run_id: str, findings: list[Finding], stages: list[str]) -> dict[str, object]:
    results = [StageResult(s, ran=True, findings=[f for f in findings if f.stage == s])
               for s in stages]  # fmt: skip
    verdict = evaluate(results, DEFAULT_POLICY, [], dt.date(2026, 12, 2))
    return run_changes.findings_document(run_id, stages, verdict)


def test_new_fixed_and_still_open_are_counted_for_stages_both_runs_ran(tmp_path: Path) -> None:
    before = document("run-1", [finding("sast", "a"), finding("sast", "b"),
                                finding("sca", "c")], ["sast", "sca"])  # fmt: skip
    previous = tmp_path / "run-1"
    previous.mkdir()
    (previous / run_changes.FINDINGS_FILE).write_text(json.dumps(before), encoding="utf-8")
    # This run: sast only (sca did not run, so its finding is not "fixed"); a fixed, d new.
    now = document("run-2", [finding("sast", "b"), finding("sast", "d")], ["sast"])
    changes = run_changes.compare(now, previous)
    assert [f["rule"] for f in changes.new] == ["d"]
    assert [f["rule"] for f in changes.fixed] == ["a"]
    assert [f["rule"] for f in changes.still_open] == ["b"]
    assert changes.summary() == (
        "since the previous run run-1 (stages sast): 1 new, 1 fixed, 1 still open"
    )
    assert (
        run_changes.compare(now, None).summary()
        == "since the previous run: not compared (no previous run)"
    )
    assert "has no readable findings.json" in run_changes.compare(now, tmp_path).summary()


def test_the_second_run_compares_with_the_first_and_shows_it_first(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    security = str(FIXTURES.parents[2] / "security")
    args = [sys.executable, "-m", "secgate", "scan", "--stages", "secrets", "--root", str(root),
            "--tools-bin", str(TOOLS_BIN), "--security-dir", security]  # fmt: skip
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    first = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "since the previous run: not compared (no previous run)" in first.stdout
    first_id = (root / "security" / "reports" / "latest").resolve().name
    second = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert second.returncode == 0, second.stdout + second.stderr
    expected = f"since the previous run {first_id} (stages secrets): 0 new, 0 fixed, 0 still open"
    assert expected in second.stdout
    latest = root / "security" / "reports" / "latest"
    summary = (latest / "summary.md").read_text(encoding="utf-8")
    head = summary.split("| stage |")[0]  # the first screen, above the stage table
    for line in (expected, f"secgate {provenance.SECGATE_VERSION}", "tree: unknown",
                 "security/policy.yml", "controls:"):  # fmt: skip
        assert line in head, line
    manifest = json.loads((latest / "manifest.json").read_text(encoding="utf-8"))["artifacts"]
    assert "findings.json" in manifest

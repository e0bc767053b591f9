"""Secrets stage, history: real git repositories, real detect-secrets, the real gate.

A secret committed and deleted in the next commit is gone from the tree but
not from the repository; these tests prove the gate still fails on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

from secgate_support import context, copy_fixture

from secgate import history
from secgate.gate import evaluate
from secgate.model import Severity, StageResult
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY
from secgate.waivers import Waiver

TODAY = dt.date(2026, 6, 1)
# Built at run time so no secret-shaped string is ever committed (not even in this test).
FAKE_AWS_KEY = "AKIA" + "QX7Z" + "M2PL" + "4RTY" + "8WNB"
KEYS = "src/app/keys.py"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=secgate tests",
         "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip()


def repository(tmp_path: Path) -> Path:
    """The clean fixture as a git repository with one commit on main."""
    root = copy_fixture("clean", tmp_path)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "clean project")
    return root


def add_then_delete_secret(root: Path) -> str:
    """Commit a file with a key, delete it in the next commit; the adding commit's hash."""
    (root / KEYS).write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n', encoding="utf-8")
    git(root, "add", KEYS)
    git(root, "commit", "-q", "-m", "add deploy key")
    added = git(root, "rev-parse", "HEAD")
    git(root, "rm", "-q", KEYS)
    git(root, "commit", "-q", "-m", "oops, remove the key")
    return added


def scan(root: Path, reports: Path, **options: str) -> StageResult:
    return run_stage("secrets", dataclasses.replace(context(root, reports), options=options))


def history_findings(result: StageResult) -> list[tuple[str, str, Severity]]:
    return [
        (f.rule_id, f.location, f.severity)
        for f in result.findings
        if f.rule_id == "secret-in-history"
    ]


def test_a_secret_added_then_deleted_fails_the_gate(tmp_path: Path) -> None:
    root = repository(tmp_path)
    git(root, "switch", "-q", "-c", "feature")
    added = add_then_delete_secret(root)
    assert not (root / KEYS).exists()
    result = scan(root, tmp_path / "reports")
    assert result.ran, result.error
    assert history_findings(result) == [
        ("secret-in-history", f"{KEYS} (commit {added[:12]})", Severity.HIGH)
    ]
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert any("main..HEAD" in note and "2 commit(s)" in note for note in result.notes)
    # The value is in no message and in no report file.
    assert all(FAKE_AWS_KEY not in f.message + f.location for f in result.findings)
    for artifact in (tmp_path / "reports").rglob("*"):
        if artifact.is_file():
            assert FAKE_AWS_KEY not in artifact.read_text(encoding="utf-8", errors="replace")


def test_a_waiver_lets_it_pass_and_survives_a_rebase(tmp_path: Path) -> None:
    root = repository(tmp_path)
    git(root, "switch", "-q", "-c", "feature")
    add_then_delete_secret(root)
    [finding] = [f for f in scan(root, tmp_path / "first").findings if f.rule_id != "new-secret"]
    waiver = Waiver(
        fingerprint=finding.fingerprint,
        reason="key revoked in IAM on 2026-05-31, replaced by the Vault-issued one",
        owner="platform-security",
        expires=TODAY + dt.timedelta(days=30),
        stage="secrets",
    )
    # Rebase the branch onto a new main commit: every commit hash changes.
    git(root, "switch", "-q", "main")
    (root / "README.md").write_text("moved on\n", encoding="utf-8")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "main moves on")
    git(root, "switch", "-q", "feature")
    git(root, "rebase", "-q", "main")
    result = scan(root, tmp_path / "second")
    assert [f.fingerprint for f in result.findings] == [finding.fingerprint]
    assert evaluate([result], DEFAULT_POLICY, [waiver], TODAY).passed


def test_a_value_the_baseline_audits_as_a_false_positive_does_not_fire(tmp_path: Path) -> None:
    root = repository(tmp_path)
    git(root, "switch", "-q", "-c", "feature")
    add_then_delete_secret(root)
    baseline_path = root / ".secrets.baseline"
    baseline = json.loads(baseline_path.read_text(encoding="utf-8"))
    hashed = hashlib.sha1(FAKE_AWS_KEY.encode(), usedforsecurity=False).hexdigest()
    baseline["results"]["docs/example.md"] = [
        {"type": "AWS Access Key", "filename": "docs/example.md", "hashed_secret": hashed,
         "is_verified": False, "line_number": 3, "is_secret": False},
    ]  # fmt: skip
    baseline_path.write_text(json.dumps(baseline), encoding="utf-8")
    result = scan(root, tmp_path / "reports")
    assert result.ran, result.error
    assert result.findings == []
    # Audited as a real secret instead: it fires.
    baseline["results"]["docs/example.md"][0]["is_secret"] = True
    baseline_path.write_text(json.dumps(baseline), encoding="utf-8")
    assert history_findings(scan(root, tmp_path / "again"))


def test_a_secret_still_in_the_tree_is_reported_once_by_the_tree_scan(tmp_path: Path) -> None:
    root = repository(tmp_path)
    git(root, "switch", "-q", "-c", "feature")
    (root / KEYS).write_text(f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n', encoding="utf-8")
    git(root, "add", KEYS)
    git(root, "commit", "-q", "-m", "add deploy key")
    result = scan(root, tmp_path / "reports")
    assert [(f.rule_id, f.location) for f in result.findings] == [("new-secret", f"{KEYS}:1")]


def test_commits_on_main_are_scanned_only_with_the_whole_history_option(tmp_path: Path) -> None:
    root = repository(tmp_path)
    added = add_then_delete_secret(root)  # on main itself
    default = scan(root, tmp_path / "default")
    assert default.ran, default.error
    assert default.findings == []
    assert any("0 commit(s) scanned (main..HEAD)" in note for note in default.notes)
    whole = scan(root, tmp_path / "whole", secrets_history="all")
    assert history_findings(whole) == [
        ("secret-in-history", f"{KEYS} (commit {added[:12]})", Severity.HIGH)
    ]
    assert not evaluate([whole], DEFAULT_POLICY, [], TODAY).passed
    # secrets_base names an older starting point instead.
    first = git(root, "rev-list", "--max-parents=0", "HEAD")
    assert history_findings(scan(root, tmp_path / "base", secrets_base=first))


def test_origin_main_is_the_default_base_when_there_is_one(tmp_path: Path) -> None:
    upstream = repository(tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    git(clone, "switch", "-q", "-c", "feature")
    add_then_delete_secret(clone)
    git(clone, "switch", "-q", "main")
    git(clone, "merge", "-q", "--ff-only", "feature")  # local main has it, origin/main not
    result = scan(clone, tmp_path / "reports")
    assert history_findings(result)
    assert any("origin/main..HEAD" in note for note in result.notes)


def test_a_shallow_clone_or_an_unknown_base_means_the_stage_did_not_run(tmp_path: Path) -> None:
    upstream = repository(tmp_path)
    git(upstream, "switch", "-q", "-c", "feature")
    add_then_delete_secret(upstream)
    # Only the branch, one commit deep: no main to start from, most of it missing.
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{upstream}",
         str(shallow)],
        check=True,
    )  # fmt: skip
    result = scan(shallow, tmp_path / "shallow-reports")
    assert not result.ran
    assert result.error is not None
    assert "shallow clone" in result.error
    assert "fetch-depth: 0" in result.error
    assert not evaluate([result], DEFAULT_POLICY, [], TODAY).passed
    # A shallow clone of main itself has nothing beyond main: complete, so it passes.
    main_only = tmp_path / "main-only"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", "main", f"file://{upstream}",
         str(main_only)],
        check=True,
    )  # fmt: skip
    clean = scan(main_only, tmp_path / "main-reports")
    assert clean.ran, clean.error
    assert any("0 commit(s) scanned (origin/main..HEAD)" in note for note in clean.notes)
    unknown_ref, unknown_mode = "no-such-branch", "some"
    unknown = scan(upstream, tmp_path / "unknown", secrets_base=unknown_ref)
    assert not unknown.ran
    assert f"secrets_base={unknown_ref!r} is not a commit" in (unknown.error or "")
    wrong = scan(upstream, tmp_path / "wrong", secrets_history=unknown_mode)
    assert not wrong.ran
    assert f"secrets_history={unknown_mode!r}: use one of branch, all" in (wrong.error or "")


def test_outside_a_git_checkout_the_report_says_only_the_tree_was_scanned(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    result = scan(root, tmp_path / "reports")
    assert result.ran, result.error
    assert "secrets history: not scanned (not a git checkout): tree only" in result.notes


def test_added_lines_of_a_merge_are_what_the_merge_itself_introduced() -> None:
    """Combined diffs: a line is the merge's own only when it is new to every parent."""
    patches = (
        b"\0" + b"a" * 40 + b"\n\n"
        b"diff --cc app.py\n--- a/app.py\n+++ b/app.py\n@@@ -1,1 -1,1 +1,3 @@@\n"
        b"++EVIL = 1\n"  # new to both parents: the merge's own line
        b" +from_first_parent = 1\n"
        b"+ from_second_parent = 1\n"
        b"\0" + b"b" * 40 + b"\n\n"
        b'diff --git "a/odd\\tname.py" "b/odd\\tname.py"\n'
        b'--- /dev/null\n+++ "b/odd\\tname.py"\n@@ -0,0 +1,2 @@\n'
        b"+++ starts like a header\n+second\n"
        b"diff --git a/gone.py b/gone.py\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x = 1\n"
    )
    added = history.added_lines(patches)
    assert [(a.commit[:1], a.path, a.lines) for a in added] == [
        ("a", "app.py", ["EVIL = 1"]),
        ("b", "odd\tname.py", ["++ starts like a header", "second"]),
    ]

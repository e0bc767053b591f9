"""The gate's own configuration compared with the base branch (secgate.configreview).

Each test builds a real git repository holding a copy of our security
configuration, commits it as the base, changes the working tree the way a
pull request would, and checks that every relaxation is listed as such, and
that tightening the gate is not.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from secgate_support import FIXTURES, REPO, TOOLS_BIN, git

from secgate.configreview import ConfigReview, review


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Our real gate configuration, committed on branch main."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURES / "clean", root)
    shutil.copytree(REPO / "security", root / "security", ignore=shutil.ignore_patterns("reports"))
    shutil.copy(REPO / ".secrets.baseline", root / ".secrets.baseline")
    (root / ".github").mkdir(exist_ok=True)
    shutil.copy(REPO / ".github" / "CODEOWNERS", root / ".github" / "CODEOWNERS")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def lines(result: ConfigReview, relaxes: bool) -> list[str]:
    return [c.line() for c in result.changes if c.relaxes is relaxes]


def test_an_unchanged_tree_has_nothing_to_review(repo: Path) -> None:
    result = review(repo, "main")
    assert result.problem is None
    assert result.changes == []
    assert result.headline().startswith("gate configuration: unchanged from main (")


def test_a_raised_threshold_is_a_relaxation_and_a_lowered_one_is_not(repo: Path) -> None:
    policy = repo / "security" / "policy.yml"
    text = policy.read_text(encoding="utf-8")
    text = text.replace("min_severity: medium\n    min_confidence: medium", "min_severity: high\n"
                        "    min_confidence: medium", 1)  # fmt: skip
    text = text.replace("max_age_days: 7", "max_age_days: 30")
    policy.write_text(text.replace("config:\n    # zizmor, workflow/dependabot schema, hadolint.\n"
                                   "    min_severity: medium", "config:\n    min_severity: low"),
                      encoding="utf-8")  # fmt: skip
    result = review(repo, "main")
    assert lines(result, True) == [
        "RELAXED: security/policy.yml: stages.sast.min_severity raised: medium -> high",
        "RELAXED: security/policy.yml: advisory_data.max_age_days 7 -> 30 days",
    ]
    assert lines(result, False) == [
        "review: security/policy.yml: stages.config.min_severity lowered: medium -> low"
    ]


def test_stages_are_compared_by_their_effective_thresholds(repo: Path) -> None:
    policy = repo / "security" / "policy.yml"
    text = policy.read_text(encoding="utf-8")
    # Without its entry sca gets secgate's built-in thresholds, the same as ours: no change.
    policy.write_text(text[: text.index("  sca:")] + text[text.index("  secrets:") :], "utf-8")
    assert review(repo, "main").changes == []
    policy.write_text(text.replace("  sca:\n", "  sca:\n    min_confidence: high\n", 1), "utf-8")
    policy.write_text(
        policy.read_text(encoding="utf-8").replace(
            "    min_severity: info\n    min_confidence: low\n  secrets", "    min_severity: info\n"
            "  secrets", 1),
        encoding="utf-8",
    )  # fmt: skip
    assert lines(review(repo, "main"), True) == [
        "RELAXED: security/policy.yml: stages.sca.min_confidence raised: low -> high"
    ]


def test_waivers_added_or_extended_are_relaxations(repo: Path) -> None:
    waivers = repo / "security" / "waivers.yml"
    base = waivers.read_text(encoding="utf-8")
    entry = (
        "waivers:\n"
        "  - fingerprint: " + "a" * 64 + "\n"
        "    stage: sast\n    rule: B602\n    reason: argv is fixed\n"
        "    owner: platform-security\n    expires: 2027-01-31\n"
    )
    waivers.write_text(base.replace("waivers: []\n", entry), encoding="utf-8")
    git(repo, "commit", "-qam", "one waiver")
    assert review(repo, "main").changes == []
    extended = waivers.read_text(encoding="utf-8").replace("2027-01-31", "2027-02-28")
    extended = extended.replace("expires: 2027-03-01", "expires: 2027-03-02")
    waivers.write_text(extended, encoding="utf-8")
    result = review(repo, "main")
    assert lines(result, True) == [
        "RELAXED: security/waivers.yml: waiver extended: sast B602 (platform-security), "
        "2027-01-31 -> 2027-02-28",
        "RELAXED: security/waivers.yml: acceptance of advisory data of 2024-10-10 extended: "
        "2027-03-01 -> 2027-03-02",
    ]
    git(repo, "checkout", "-q", "HEAD~1", "--", "security/waivers.yml")
    added = review(repo, "main~1")
    assert added.changes == []  # the working tree now equals main~1's waivers
    waivers.write_text(extended, encoding="utf-8")
    assert any("waiver added: sast B602" in line for line in lines(review(repo, "main~1"), True))


def test_semgrep_rule_or_rule_test_removed_or_weakened_is_a_relaxation(repo: Path) -> None:
    rules = repo / "security" / "semgrep"
    (rules / "pickle-load-only.yml").write_text("rules: []\n", encoding="utf-8")  # a new file
    debug = rules / "flask-debug.yml"
    debug.write_text(
        debug.read_text(encoding="utf-8").replace("severity: ERROR", "severity: INFO", 1),
        encoding="utf-8",
    )
    (rules / "subprocess-shell.yml").unlink()
    tests = rules / "secret-in-log.py"
    original = tests.read_text(encoding="utf-8").splitlines()
    kept = [line for line in original if "ruleid:" not in line]
    tests.write_text("\n".join(kept) + "\n", encoding="utf-8")
    relaxed = lines(review(repo, "main"), True)
    lowered = "rule flask-debug-enabled severity lowered: ERROR -> INFO"
    assert f"RELAXED: security/semgrep: {lowered}" in relaxed
    assert "RELAXED: security/semgrep: rule subprocess-shell-true removed" in relaxed
    assert any(line.startswith("RELAXED: security/semgrep: ruleid tests of secret-in-log removed")
               for line in relaxed)  # fmt: skip


def test_a_changed_rule_is_listed_for_review(repo: Path) -> None:
    debug = repo / "security" / "semgrep" / "flask-debug.yml"
    debug.write_text(
        debug.read_text(encoding="utf-8").replace("      - pattern: $APP.debug = True\n", "", 1),
        encoding="utf-8",
    )
    result = review(repo, "main")
    assert lines(result, False) == [
        "review: security/semgrep: rule flask-debug-enabled changed; check it still matches"
    ]


def test_baseline_entries_exclusions_and_detectors_are_relaxations(repo: Path) -> None:
    path = repo / ".secrets.baseline"
    baseline = json.loads(path.read_text(encoding="utf-8"))
    baseline["results"]["src/app.py"] = [
        {"type": "Secret Keyword", "filename": "src/app.py", "hashed_secret": "0" * 40,
         "is_verified": False, "line_number": 3, "is_secret": False}
    ]  # fmt: skip
    for item in baseline["filters_used"]:
        if item["path"].endswith("should_exclude_file"):
            item["pattern"].append("^src/")
    plugins = baseline["plugins_used"]
    baseline["plugins_used"] = [p for p in plugins if p["name"] != "AWSKeyDetector"]
    path.write_text(json.dumps(baseline, indent=2), encoding="utf-8")
    assert lines(review(repo, "main"), True) == [
        "RELAXED: .secrets.baseline: entry added: src/app.py (Secret Keyword, line 3)",
        "RELAXED: .secrets.baseline: files excluded from the scan: ^src/",
        "RELAXED: .secrets.baseline: detector removed: AWSKeyDetector",
    ]


def test_bandit_skips_and_codeowners_removal_are_relaxations(repo: Path) -> None:
    bandit = repo / "security" / "bandit.yml"
    bandit.write_text(
        bandit.read_text(encoding="utf-8").replace("skips: []", "skips: [B602]"), encoding="utf-8"
    )
    (repo / ".github" / "CODEOWNERS").unlink()
    (repo / "security" / "schemathesis.toml").write_text("# widened\n", encoding="utf-8")
    result = review(repo, "main")
    assert lines(result, True) == [
        "RELAXED: security/bandit.yml: skipped: B602",
        "RELAXED: .github/CODEOWNERS: removed: nothing requires a security review",
    ]
    assert lines(result, False) == ["review: security/schemathesis.toml: changed"]


def test_a_bandit_raise_removed_or_lowered_is_a_relaxation(repo: Path) -> None:
    levels = repo / "security" / "bandit-levels.yml"
    text = levels.read_text(encoding="utf-8")
    start = text.index("  B311:")
    end = text.index("  B504:")
    text = text[:start] + text[end:]
    text = text.replace("  B608:\n    confidence: medium", "  B608:\n    confidence: low")
    levels.write_text(text, encoding="utf-8")
    assert lines(review(repo, "main"), True) == [
        "RELAXED: security/bandit-levels.yml: raise of B311 removed",
        "RELAXED: security/bandit-levels.yml: raise of B608 confidence lowered: medium -> low",
    ]


def test_an_unknown_base_is_said_not_guessed(repo: Path) -> None:
    result = review(repo, "origin/no-such-branch")
    assert result.problem is not None
    assert result.headline().startswith("gate configuration: NOT COMPARED with origin/no-such")
    assert review(repo, "--output=/tmp/x").problem is not None  # never read as a git option


def secgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secgate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_the_scan_report_and_job_summary_show_relaxations_first(repo: Path) -> None:
    policy = repo / "security" / "policy.yml"
    policy.write_text(
        policy.read_text(encoding="utf-8").replace("max_age_days: 7", "max_age_days: 400"),
        encoding="utf-8",
    )
    summary = repo.parent / "step-summary.md"
    done = secgate(
        "scan", "--stages", "secrets", "--root", str(repo), "--config-base", "main",
        "--tools-bin", str(TOOLS_BIN), "--step-summary", str(summary), cwd=repo.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    relaxed = "RELAXED: security/policy.yml: advisory_data.max_age_days 7 -> 400 days"
    assert done.stdout.splitlines()[1].strip() == relaxed  # right under the headline
    latest = repo / "security" / "reports" / "latest"
    markdown = (latest / "summary.md").read_text(encoding="utf-8").splitlines()
    assert markdown[0] == "## secgate: PASSED"
    headline = next(n for n, line in enumerate(markdown) if "1 relaxation(s)" in line)
    assert markdown[headline + 2] == f"- `{relaxed}`"
    assert headline < markdown.index(next(line for line in markdown if line.startswith("| stage")))
    assert relaxed in summary.read_text(encoding="utf-8")
    assert html.escape(relaxed) in (latest / "report.html").read_text(encoding="utf-8")
    recorded = json.loads((latest / "config-review.json").read_text(encoding="utf-8"))
    assert recorded["changes"] == [
        {"file": "security/policy.yml", "change": "advisory_data.max_age_days 7 -> 400 days",
         "relaxes": True}
    ]  # fmt: skip
    assert "config-review.json" in json.loads((latest / "manifest.json").read_text())["artifacts"]


def test_config_review_command_writes_the_job_summary_and_exits_2_without_a_base(
    repo: Path,
) -> None:
    (repo / "security" / "waivers.yml").write_text("waivers: []\n", encoding="utf-8")
    summary = repo.parent / "summary.md"
    done = secgate("config-review", "--root", str(repo), "--base", "main",
                   "--step-summary", str(summary), cwd=repo.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "0 relaxation(s), 0 other change(s)" not in done.stdout
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## secgate: gate configuration\n")
    assert "review: security/waivers.yml" not in text  # removing acknowledgements tightens
    missing = secgate("config-review", "--root", str(repo), "--base", "nope", cwd=repo.parent)
    assert missing.returncode == 2
    assert "NOT COMPARED with nope" in missing.stdout

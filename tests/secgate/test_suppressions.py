"""Inline scanner suppressions are findings of the secrets stage (real detect-secrets, real gate).

Every suppression comment here is built at run time: committed literally, this
file would be a finding itself.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from secgate_support import REPO, context, copy_fixture

from secgate import suppressions
from secgate.gate import evaluate
from secgate.model import Severity
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY
from secgate.stages import secrets

TODAY = dt.date(2026, 6, 1)
FAKE_AWS_KEY = "AKIA" + "QX7Z" + "M2PL" + "4RTY" + "8WNB"
HASH = "#"
ALLOWLIST = "pragma: " + "allowlist secret"

SUPPRESSING = [
    (f"x = 'v'  {HASH} {ALLOWLIST}", "detect-secrets-allowlist"),
    (f"{HASH} pragma: " + "allowlist nextline secret", "detect-secrets-allowlist"),
    ("// pragma: " + "whitelist secret", "detect-secrets-allowlist"),
    (f"import pickle  {HASH} " + "nosec", "bandit-nosec"),
    (f"import subprocess  {HASH} " + "nosec B404 - a reason", "bandit-nosec"),
    (f"run(x)  {HASH} " + "nosemgrep", "semgrep-nosemgrep"),
    ("run(x)  // " + "nosemgrep: python.lang.rule", "semgrep-nosemgrep"),
    (f"f(x)  {HASH} " + "noqa", "ruff-noqa-security"),
    (f"f(x)  {HASH} " + "noqa: S603", "ruff-noqa-security"),
    (f"f(x)  {HASH} " + "noqa: E501, S105 - a label", "ruff-noqa-security"),
    (f"{HASH} ruff: " + "noqa", "ruff-noqa-security"),
    (f"{HASH} ruff: " + "noqa: S101", "ruff-noqa-security"),
    (f"{HASH} flake8: " + "noqa", "ruff-noqa-security"),
    (f"  uses: actions/x@v1  {HASH} " + "zizmor: ignore[unpinned-uses]", "zizmor-ignore"),
    (f"{HASH} hadolint " + "ignore=DL3008", "hadolint-ignore"),
    (f"{HASH} hadolint global " + "ignore=DL3008,DL3009", "hadolint-ignore"),
    (f"key = 'v'  {HASH} gitleaks" + ":allow", "gitleaks-allow"),
    (f"{HASH}trivy" + ":ignore:CVE-2024-0001", "trivy-ignore"),
    (f"{HASH} checkov" + ":skip=CKV_DOCKER_2: reason", "checkov-skip"),
    ("x = 1  // NO" + "SONAR", "sonar-nosonar"),
]
NOT_SUPPRESSING = [
    f"if debug:  {HASH} pragma: no cover",
    f"value = thing.attr  {HASH} type: ignore[attr-defined]",
    f"long_line = 1  {HASH} " + "noqa: E501",
    f"STORAGE = ['x']  {HASH} " + "noqa: RUF012 - the registry key",
    f"parts.port  {HASH} " + "noqa: B018, BLE001",
    "bandit runs with --ignore-" + "nosec and semgrep with --disable-" + "nosem",
    "the detect-secrets allowlist pragma is not honoured",
]


@pytest.mark.parametrize(("line", "rule"), SUPPRESSING)
def test_each_scanner_suppression_is_recognised(line: str, rule: str) -> None:
    assert rule in {found for found, _ in suppressions.matches(line)}


@pytest.mark.parametrize("line", NOT_SUPPRESSING)
def test_comments_that_suppress_no_security_check_are_not_flagged(line: str) -> None:
    assert suppressions.matches(line) == []


def test_an_allowlisted_secret_fails_the_gate_without_being_quoted(tmp_path: Path) -> None:
    """detect-secrets honours the pragma, so only this check sees the key."""
    root = copy_fixture("clean", tmp_path)
    keys = root / "src" / "app" / "keys.py"
    keys.write_text(f'KEY = "{FAKE_AWS_KEY}"  {HASH} {ALLOWLIST}\n', encoding="utf-8")
    (root / ".semgrepignore").write_text("src/\n", encoding="utf-8")
    result = run_stage("secrets", context(root, tmp_path / "reports"))
    assert result.ran, result.error
    found = {(f.tool, f.rule_id, f.location, f.severity) for f in result.findings}
    assert found == {
        ("secgate-suppressions", "detect-secrets-allowlist", "src/app/keys.py:1", Severity.MEDIUM),
        ("secgate-suppressions", "ignore-file", ".semgrepignore", Severity.MEDIUM),
    }
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert len(verdict.blocking) == 2
    assert all(FAKE_AWS_KEY not in f.message + f.location + f.help for f in result.findings)


def test_the_baseline_exclusions_apply(tmp_path: Path) -> None:
    """Deliberately flawed fixtures (excluded by the baseline) are not checked."""
    root = copy_fixture("clean", tmp_path)
    fixture = root / "tests" / "secgate" / "fixtures" / "flawed.py"
    fixture.parent.mkdir(parents=True)
    fixture.write_text(f"import pickle  {HASH} " + "nosec\n", encoding="utf-8")
    result = run_stage("secrets", context(root, tmp_path / "reports"))
    assert result.ran, result.error
    assert result.findings == []


def test_the_repository_has_no_inline_suppressions(tmp_path: Path) -> None:
    """What `make scan-static` checks, here in a second: src, tests, docs, workflows."""
    baseline = json.loads((REPO / ".secrets.baseline").read_text(encoding="utf-8"))
    patterns = secrets.exclude_patterns(context(REPO, tmp_path / "reports"), baseline)
    files = secrets.files_to_check(REPO, patterns)
    assert "src/secgate/suppressions.py" in files
    assert "tests/secgate/test_suppressions.py" in files
    assert [f.location for f in suppressions.find(REPO, files)] == []

"""Per-test raises of bandit's levels: real bandit, the real policy, the reviewed file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest
from secgate_support import SECURITY, context

from secgate import bandit_levels
from secgate.gate import evaluate
from secgate.model import Confidence, Finding, ScanContext, Severity, StageResult
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY
from secgate.stages import sast

TODAY = dt.date(2026, 6, 1)

# Each module holds one weakness bandit rates below the gate's thresholds by default.
HIDDEN = {
    "B311": "import random\n\n\ndef reset_code():\n    return random.randint(100000, 999999)\n",
    "B608": (
        "def events_of(cursor, owner):\n"
        "    query = \"SELECT * FROM events WHERE owner = '%s'\" % owner\n"
        "    return cursor.execute(query)\n"
    ),
    "B113": "import requests\n\n\ndef ping(url):\n    return requests.get(url, verify=True).ok\n",
}
SHELL = "import subprocess\n\n\ndef run(cmd):\n    subprocess.run(cmd, shell=True)\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "app").mkdir(parents=True)
    for test_id, code in HIDDEN.items():
        (root / "src" / "app" / f"{test_id.lower()}.py").write_text(code, encoding="utf-8")
    (root / "src" / "app" / "shell.py").write_text(SHELL, encoding="utf-8")
    return root


def security_dir(tmp_path: Path, levels: str | None) -> Path:
    """A security/ directory with our bandit.yml and the given bandit-levels.yml (or none)."""
    directory = tmp_path / "security"
    directory.mkdir()
    shutil.copy(SECURITY / "bandit.yml", directory / "bandit.yml")
    if levels is not None:
        (directory / bandit_levels.FILE_NAME).write_text(levels, encoding="utf-8")
    return directory


def bandit(project: Path, tmp_path: Path, security: Path) -> list[Finding]:
    ctx = dataclasses.replace(context(project, tmp_path / "reports"), security_dir=security)
    return sast.run_bandit(ctx, ["src"]).findings


def blocking_tests(findings: list[Finding]) -> set[str]:
    verdict = evaluate([StageResult("sast", True, findings)], DEFAULT_POLICY, [], TODAY)
    return {f.rule_id.split("-", 1)[0] for f in verdict.blocking}


def test_bandit_defaults_hide_the_classes_our_file_raises(project: Path, tmp_path: Path) -> None:
    findings = bandit(project, tmp_path, security_dir(tmp_path, None))
    assert set(HIDDEN) <= {f.rule_id.split("-", 1)[0] for f in findings}  # reported...
    assert blocking_tests(findings) == {"B602"}  # ...but only shell=True blocks


def test_the_reviewed_file_makes_them_block(project: Path, tmp_path: Path) -> None:
    shutil.copytree(SECURITY, tmp_path / "security")
    findings = bandit(project, tmp_path, tmp_path / "security")
    assert blocking_tests(findings) == {"B602", *HIDDEN}
    raised = next(f for f in findings if f.rule_id.startswith("B311"))
    assert raised.severity == Severity.MEDIUM
    assert "raised by security/bandit-levels.yml from bandit's low/high" in raised.message


def test_every_entry_of_the_reviewed_file_is_loaded_with_a_reason() -> None:
    raises = bandit_levels.load(SECURITY / bandit_levels.FILE_NAME)
    assert set(raises) == set(HIDDEN) | {"B504"}
    assert all(r.reason for r in raises.values())


def test_a_raise_never_lowers_a_finding(project: Path, tmp_path: Path) -> None:
    levels = "raise:\n  B602:\n    severity: low\n    confidence: low\n    reason: try to hide it\n"
    findings = bandit(project, tmp_path, security_dir(tmp_path, levels))
    shell = next(f for f in findings if f.rule_id.startswith("B602"))
    assert (shell.severity, shell.confidence) == (Severity.HIGH, Confidence.HIGH)
    assert "B602" in blocking_tests(findings)


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ("raise:\n  B311:\n    severity: medium\n", "B311: say why"),
        ("raise:\n  B311:\n    severity: huge\n    reason: x\n", "B311: unknown level"),
        ("raise:\n  B311:\n    reason: x\n", "B311: raise severity, confidence or both"),
        ("raise:\n  B311:\n    severity: medium\n    reason: x\n    skip: true\n", "allowed keys"),
        ("raise:\n  random:\n    severity: medium\n    reason: x\n", "not a bandit test id"),
        ("lower:\n  B311:\n    severity: low\n", "one top-level key, raise:"),
    ],
)
def test_a_bad_file_fails_the_stage_naming_the_entry(
    project: Path, tmp_path: Path, levels: str, message: str
) -> None:
    ctx = ScanContext(
        root=project,
        report_dir=tmp_path / "reports",
        security_dir=security_dir(tmp_path, levels),
        tools_bin=context(project, tmp_path / "reports").tools_bin,
    )
    result = run_stage("sast", ctx)
    assert not result.ran or result.error
    assert message in (result.error or ""), result.error
    assert not evaluate([result], DEFAULT_POLICY, [], TODAY).passed

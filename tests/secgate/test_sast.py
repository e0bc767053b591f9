"""SAST stage: real bandit and semgrep on a fixture with one marked flaw per module."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from secgate_support import FIXTURES, context, copy_fixture, flaw_lines

from secgate.gate import evaluate
from secgate.model import StageResult
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY
from secgate.stages import sast
from secgate.waivers import Waiver

TODAY = dt.date(2026, 6, 1)
FLAWS = flaw_lines(FIXTURES / "sast_flaws")


@pytest.fixture(scope="module")
def flawed(module_tmp: Path) -> StageResult:
    root = copy_fixture("sast_flaws", module_tmp)
    return run_stage("sast", context(root, module_tmp / "reports"))


def test_both_tools_ran_and_wrote_native_reports(flawed: StageResult) -> None:
    assert flawed.ran, flawed.error
    assert set(flawed.tool_versions) == {"bandit", "semgrep"}
    names = {p.name for p in flawed.artifacts}
    assert {"bandit.json", "bandit.sarif", "semgrep.json", "semgrep.sarif"} <= names
    assert all(p.is_file() for p in flawed.artifacts)


def test_fixture_marks_every_flaw_we_promise() -> None:
    assert set(FLAWS.values()) == {
        "flask-request-to-mongo-query",
        "flask-debug-enabled",
        "tls-verification-disabled",
        "secret-in-log",
        "yaml-load-without-safeloader",
        "pickle-load",
        "subprocess-shell-true",
        "hardcoded-credential",
        "flask-route-without-auth",
        "flask-path-traversal",
        "flask-ssrf",
        "insecure-randomness",
    }


@pytest.mark.parametrize(("where", "rule"), sorted(FLAWS.items()), ids=sorted(FLAWS.values()))
def test_each_flaw_alone_fails_the_gate_naming_rule_and_line(
    flawed: StageResult, where: tuple[str, int], rule: str
) -> None:
    path, line = where
    alone = StageResult("sast", True, [f for f in flawed.findings if f.path == path])
    verdict = evaluate([alone], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    blocking = {(f.rule_id, f.location) for f in verdict.blocking}
    assert (rule, f"{path}:{line}") in blocking, blocking
    assert f"semgrep {rule} at {path}:{line}" in " | ".join(verdict.reasons)


def test_findings_carry_fix_advice_and_taxonomy(flawed: StageResult) -> None:
    ours = [f for f in flawed.findings if f.tool == "semgrep"]
    assert ours
    for f in ours:
        assert f.help, f
        assert f.owasp, f
        assert (f.cwe or "").startswith("CWE-"), f


def test_fingerprints_are_unique_within_a_run(flawed: StageResult) -> None:
    prints = [f.fingerprint for f in flawed.findings]
    assert len(prints) == len(set(prints))


def test_waiving_every_blocking_finding_passes_and_expiry_fails(flawed: StageResult) -> None:
    blocking = evaluate([flawed], DEFAULT_POLICY, [], TODAY).blocking
    waivers = [
        Waiver(f.fingerprint, "fixture", "secgate-tests", TODAY, stage="sast") for f in blocking
    ]
    assert evaluate([flawed], DEFAULT_POLICY, waivers, TODAY).passed
    assert not evaluate([flawed], DEFAULT_POLICY, waivers, TODAY + dt.timedelta(days=1)).passed


def test_fingerprints_survive_line_shifts(tmp_path: Path) -> None:
    """Same code, moved down and re-indented: same fingerprints, new line numbers."""
    root = copy_fixture("sast_flaws", tmp_path)
    first = sast.run_bandit(context(root, tmp_path / "r1"), ["src"]).findings
    target = root / "src" / "app" / "shell.py"
    target.write_text("\n\n\n" + target.read_text(encoding="utf-8"), encoding="utf-8")
    second = sast.run_bandit(context(root, tmp_path / "r2"), ["src"]).findings
    assert {f.fingerprint for f in first} == {f.fingerprint for f in second}
    assert {f.line for f in first if f.path == "src/app/shell.py"} != {
        f.line for f in second if f.path == "src/app/shell.py"
    }


def test_a_file_the_scanners_cannot_parse_fails_the_stage_naming_it(tmp_path: Path) -> None:
    """Not a warning, not a finding below the thresholds: the stage did not run."""
    root = copy_fixture("unparsable", tmp_path)
    result = run_stage("sast", context(root, tmp_path / "reports"))
    assert not result.ran
    assert result.error is not None
    assert "bandit could not scan src/app/broken.py: syntax error" in result.error
    assert "semgrep could not scan src/app/broken.py: Lexical error" in result.error
    # semgrep only warns about a file it parsed partly: that fails the stage as well.
    assert "bandit could not scan src/app/partial.py: syntax error" in result.error
    assert "semgrep could not scan src/app/partial.py: PartialParsing" in result.error
    assert not evaluate([result], DEFAULT_POLICY, [], TODAY).passed

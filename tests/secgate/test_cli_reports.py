"""The secgate command end to end: exit codes, console advice, and every report file."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from secgate_support import FIXTURES, TOOLS_BIN, copy_fixture, flaw_lines

from secgate.gate import evaluate
from secgate.model import Confidence, Finding, Severity, StageResult
from secgate.pipeline import RunInfo
from secgate.policy import DEFAULT_POLICY
from secgate.reports import html, sarif
from secgate.waivers import Waiver

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "sarif-2.1.0-subset.schema.json").read_text("utf-8")
)
SECGATE_RULES_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "secgate-sarif-rules.schema.json").read_text("utf-8")
)
# Written by the tools themselves (kept as evidence); every other *.sarif is secgate's.
NATIVE_SARIF = {"bandit.sarif", "semgrep.sarif", "zizmor.sarif", "hadolint.sarif"}
STATIC = "sast,secrets,config"


def secgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secgate", *args, "--tools-bin", str(TOOLS_BIN)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def clean_run(module_tmp: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    root = copy_fixture("clean", module_tmp)
    security = FIXTURES.parents[2] / "security"
    # Reports go to the default ROOT/security/reports: inside the scanned tree on purpose.
    args = ["--root", str(root), "--security-dir", str(security)]
    done = secgate("scan", "--stages", STATIC, *args, cwd=module_tmp)
    return done, root / "security" / "reports" / "latest"


@pytest.fixture(scope="module")
def flawed_run(module_tmp: Path) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """sast_flaws code + the unpinned workflow + a clean baseline: fails in two stages."""
    root = copy_fixture("sast_flaws", module_tmp)
    shutil.copytree(FIXTURES / "unpinned_action" / ".github", root / ".github")
    shutil.copy(FIXTURES / "clean" / ".secrets.baseline", root / ".secrets.baseline")
    security = FIXTURES.parents[2] / "security"
    reports = module_tmp / "flawed-reports"
    args = ["--root", str(root), "--security-dir", str(security), "--report-dir", str(reports)]
    done = secgate("scan", "--stages", STATIC, *args, cwd=module_tmp)
    return done, reports / "latest", root


def test_clean_project_passes_with_exit_0(
    clean_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, latest = clean_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate PASSED" in done.stdout
    assert latest.is_symlink()
    assert (latest / "report.html").is_file()


def test_flawed_project_fails_and_says_how_to_fix_or_waive(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    done, _, root = flawed_run
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "gate FAILED" in out
    marks = {**flaw_lines(root / "src"), **flaw_lines(root / ".github")}
    assert len(marks) == 15
    for (path, line), rule in flaw_lines(root).items():
        assert f"{path}:{line}  " in out, (path, line)
        assert rule in out, rule
    assert "fix: " in out
    assert "waive: add to security/waivers.yml:" in out
    assert "- fingerprint: " in out


def test_malformed_waivers_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    waivers = tmp_path / "waivers.yml"
    waivers.write_text("waivers:\n  - fingerprint: abc\n", encoding="utf-8")
    done = secgate("scan", "--root", str(root), "--waivers", str(waivers), cwd=tmp_path)
    assert done.returncode == 2
    assert "waiver #1: missing stage, reason, owner, expires" in done.stdout


def test_unknown_stage_is_a_usage_error(tmp_path: Path) -> None:
    done = secgate("scan", "--stages", "sast,fuzz", "--root", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown stage" in done.stdout + done.stderr


def _sarif_files(run_dir: Path) -> list[Path]:
    files = sorted(run_dir.glob("*.sarif"))
    assert files
    return files


@pytest.mark.parametrize("which", ["clean_run", "flawed_run"])
def test_every_sarif_validates(which: str, request: pytest.FixtureRequest) -> None:
    run_dir: Path = request.getfixturevalue(which)[1]
    names = {p.name for p in _sarif_files(run_dir)}
    assert {"secgate.sarif", "bandit.sarif", "semgrep.sarif", "zizmor.sarif"} <= names
    assert "detect-secrets.sarif" in names  # written by secgate: no native SARIF
    for path in _sarif_files(run_dir):
        document = json.loads(path.read_text("utf-8"))
        jsonschema.validate(document, SARIF_SCHEMA)
        if path.name not in NATIVE_SARIF:
            jsonschema.validate(document, SECGATE_RULES_SCHEMA)


def test_merged_sarif_rules_link_their_documentation(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    """Each tool's rules point at that tool's page for the rule, with CWE/OWASP tags."""
    document = json.loads((flawed_run[1] / "secgate.sarif").read_text("utf-8"))
    rules = {
        (run["tool"]["driver"]["name"], rule["id"]): rule
        for run in document["runs"]
        for rule in run["tool"]["driver"]["rules"]
    }
    pickle = rules[("semgrep", "pickle-load")]
    assert pickle["helpUri"].startswith("https://")
    assert {"CWE-502", "external/cwe/cwe-502"} <= set(pickle["properties"]["tags"])
    bandit = [rule for (tool, _), rule in rules.items() if tool == "bandit"]
    assert bandit
    assert all(r["helpUri"].startswith("https://bandit.readthedocs.io/") for r in bandit)
    unpinned = rules[("zizmor", "unpinned-uses")]
    assert unpinned["helpUri"] == "https://docs.zizmor.sh/audits/#unpinned-uses"
    assert unpinned["properties"]["security-severity"] == "8.0"
    jsonschema.validate(document, SECGATE_RULES_SCHEMA)


def test_rules_schema_rejects_a_rule_without_its_documentation() -> None:
    """The stricter schema can fail: a rule as secgate wrote it before issue #11 does."""
    old_rule = {
        "id": "B101",
        "shortDescription": {"text": "assert used"},
        "help": {"text": "See the tool's documentation."},
        "properties": {"tags": ["security"], "security-severity": "3.0"},
    }
    document = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "x", "rules": [old_rule]}}}],
    }
    jsonschema.validate(document, SARIF_SCHEMA)
    with pytest.raises(jsonschema.ValidationError, match="fullDescription"):
        jsonschema.validate(document, SECGATE_RULES_SCHEMA)


def test_merged_sarif_has_stable_partial_fingerprints(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    document = json.loads((flawed_run[1] / "secgate.sarif").read_text("utf-8"))
    tools = {run["tool"]["driver"]["name"] for run in document["runs"]}
    assert {"bandit", "semgrep", "zizmor", "check-jsonschema"} <= tools
    results = [r for run in document["runs"] for r in run["results"]]
    assert results
    for result in results:
        assert len(result["partialFingerprints"]["secgate/v1"]) == 64
    blocking = [r for r in results if r["properties"]["blocking"]]
    assert {r["ruleId"] for r in blocking} >= {"pickle-load", "unpinned-uses"}


def test_junit_has_a_case_per_stage_and_per_blocking_finding(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    tree = ET.parse(flawed_run[1] / "junit.xml")  # our own output
    suite = tree.getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    stages = {c.get("name"): c for c in cases if c.get("classname") == "secgate.stages"}
    assert set(stages) == {"sast", "secrets", "config"}
    # Every stage fails: detect-secrets also sees the hard-coded password in password.py.
    assert all(stages[name].find("failure") is not None for name in stages)
    assert any("detect-secrets" in (c.get("name") or "") and "password.py" in (c.get("name") or "")
               for c in cases)  # fmt: skip
    finding_cases = [c for c in cases if c.get("classname") != "secgate.stages"]
    assert finding_cases
    assert all(c.find("failure") is not None for c in finding_cases)
    assert int(suite.get("failures", "0")) == 3 + len(finding_cases)


def test_summary_markdown_and_manifest(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    run_dir = flawed_run[1]
    summary = (run_dir / "summary.md").read_text("utf-8")
    assert summary.startswith("## secgate: FAILED")
    for path, line in flaw_lines(flawed_run[2] / "src"):
        assert f"`src/{path}:{line}`" in summary, (path, line)
    manifest = json.loads((run_dir / "manifest.json").read_text("utf-8"))
    assert "report.html" in manifest["artifacts"]
    assert "junit.xml" in manifest["artifacts"]
    for name, digest in manifest["artifacts"].items():
        assert hashlib.sha256((run_dir / name).read_bytes()).hexdigest() == digest, name


def test_html_report_is_self_contained_and_complete(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    page = (flawed_run[1] / "report.html").read_text("utf-8")
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "src=" not in page.lower()
    for text in ("FAILED", "A08:2021", "bandit", "semgrep", "zizmor", "hadolint not run",
                 "not requested in this run", "sha256", "git commit"):  # fmt: skip
        assert text in page, text


def test_html_escapes_attacker_controlled_text(tmp_path: Path) -> None:
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    finding = Finding(
        stage="dast",
        tool="wapiti",
        rule_id="xss",
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        message=evil,
        location=f"GET https://127.0.0.1:8443/api?q={evil}",
        fingerprint="0" * 64,
        help=evil,
    )
    result = StageResult("dast", True, [finding], tool_versions={"wapiti": evil})
    result.metadata["advisory"] = evil
    waiver = Waiver("0" * 64, evil, evil, dt.date(2026, 6, 1), stage="dast")
    verdict = evaluate([result], DEFAULT_POLICY, [waiver], dt.date(2026, 6, 1))
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    info = RunInfo("run", evil, tmp_path, tmp_path, now, stages=["dast"])
    page = html.render(info, [result], verdict, [waiver], {evil: evil}, now)
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img" in page  # markupsafe escapes


def test_every_sarif_result_has_a_file_location_as_github_requires(tmp_path: Path) -> None:
    """GitHub code scanning rejects the whole file if one result lacks a physical location."""
    (tmp_path / "openapi.json").write_text("{}", encoding="utf-8")
    url_finding = Finding(
        stage="dast",
        tool="schemathesis",
        rule_id="server-error",
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        message="500 Internal Server Error",
        location="GET https://127.0.0.1:8443/api/v1/events?limit=-1",
        fingerprint="1" * 64,
    )
    result = StageResult("dast", True, [url_finding], tool_versions={"schemathesis": "4"})
    verdict = evaluate([result], DEFAULT_POLICY, [], dt.date(2026, 6, 1))
    path = sarif.write_merged(tmp_path / "secgate.sarif", [result], verdict, [], tmp_path)
    document = json.loads(path.read_text("utf-8"))
    jsonschema.validate(document, SARIF_SCHEMA)
    [entry] = document["runs"][0]["results"]
    [where] = entry["locations"]
    assert where["physicalLocation"]["artifactLocation"]["uri"] == "openapi.json"
    assert where["logicalLocations"][0]["fullyQualifiedName"] == url_finding.location


def test_flawed_run_sarif_results_all_have_file_locations(
    flawed_run: tuple[subprocess.CompletedProcess[str], Path, Path],
) -> None:
    document = json.loads((flawed_run[1] / "secgate.sarif").read_text("utf-8"))
    for run in document["runs"]:
        for entry in run["results"]:
            for where in entry["locations"]:
                assert where["physicalLocation"]["artifactLocation"]["uri"], entry

"""security/controls.yml: the single list of controls, checked and judged by this run's evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from secgate_support import FIXTURES, REPO, TOOLS_BIN, copy_fixture

from secgate.controls import (
    Control,
    ControlsError,
    judge,
    load_controls,
    missing_references,
    replace_table,
)
from secgate.testresults import JUnitError, load

CONTROLS = REPO / "security" / "controls.yml"


def test_every_listed_test_and_rule_exists() -> None:
    controls = load_controls(CONTROLS)
    assert len(controls) >= 30
    assert missing_references(controls, REPO) == []


def test_security_md_table_is_generated_from_controls_yml() -> None:
    document = (REPO / "SECURITY.md").read_text(encoding="utf-8")
    assert replace_table(document, load_controls(CONTROLS)) == document, "run `make controls`"


def write_controls(root: Path, body: str) -> Path:
    path = root / "security" / "controls.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def test_a_missing_test_or_rule_is_named(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "helpers.py").write_text("ATTACKS = []\n", encoding="utf-8")
    (tmp_path / "tests" / "test_a.py").write_text(
        "class TestGroup:\n    def test_inner(self):\n        pass\n\ndef test_real():\n    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "security" / "semgrep").mkdir(parents=True)
    (tmp_path / "security" / "semgrep" / "r.yml").write_text("rules:\n  - id: real-rule\n")
    path = write_controls(
        tmp_path,
        """controls:
  - id: c1
    statement: s
    where: w
    source: [ASVS 1.1.1]
    tests:
      - tests/test_a.py::test_real[param-1]
      - tests/test_a.py::TestGroup::test_inner
      - tests/test_a.py::test_gone
      - tests/test_b.py
      - tests/helpers.py
      - tests/
    rules: [semgrep:real-rule, semgrep:gone-rule, bandit:B602]
""",
    )
    assert missing_references(load_controls(path), tmp_path) == [
        "c1: test tests/test_a.py::test_gone: no test_gone in tests/test_a.py",
        "c1: test tests/test_b.py: no such test file",
        "c1: test tests/helpers.py: not a test module (pytest collects test_*.py only)",
        "c1: rule semgrep:gone-rule: no such semgrep rule",
        "c1: rule bandit:B602: no such semgrep rule",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "secgate", "controls", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "c1: test tests/test_b.py: no such test file" in done.stderr


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - {id: a, statement: s, where: w, source: [x]}\n", "names no test, rule or scan"),
        ("  - {id: a, statement: s, where: w, source: [x], scans: [fuzz]}\n", "unknown scans"),
        ("  - {id: a, statement: s, where: w, tests: [tests/x.py]}\n", "missing source"),
        ("  - {id: a, statement: s, where: w, source: x, scans: [sca]}\n", "source must be a list"),
        (
            "  - {id: a, statement: s, where: w, source: [x], scans: [sca]}\n" * 2,
            "control ids used twice: a",
        ),
    ],
)
def test_a_control_without_source_or_proof_is_refused(
    tmp_path: Path, entry: str, message: str
) -> None:
    with pytest.raises(ControlsError, match=message):
        load_controls(write_controls(tmp_path, "controls:\n" + entry))


CONTROL = Control(
    id="c",
    statement="s",
    where="w",
    source=("ASVS 1.1.1",),
    tests=("tests/a.py::test_one", "tests/b.py"),
    rules=("semgrep:r",),
    scans=("sca",),
)


def test_a_control_is_proven_only_when_every_piece_of_its_evidence_passed() -> None:
    passed = {"tests/a.py::test_one": "passed", "tests/b.py::test_x[1]": "passed",
              "tests/b.py::TestY::test_z": "passed"}  # fmt: skip
    stages = {"sast": "pass", "sca": "pass"}
    (verdict,) = judge([CONTROL], passed, stages)
    assert verdict.proven
    assert verdict.evidence == (
        "tests/a.py::test_one: 1 case(s): passed",
        "tests/b.py: 2 case(s): passed",
        "semgrep:r: passed",
        "sca stage: passed",
    )
    failed = {**passed, "tests/b.py::test_x[1]": "failed"}
    assert judge([CONTROL], failed, stages)[0].evidence[1] == "tests/b.py: 2 case(s), failed"
    skipped = {**passed, "tests/a.py::test_one": "skipped"}
    assert not judge([CONTROL], skipped, stages)[0].proven
    missing = {k: v for k, v in passed.items() if not k.startswith("tests/a.py")}
    assert judge([CONTROL], missing, stages)[0].evidence[0] == (
        "tests/a.py::test_one: missing from this run's test results"
    )
    assert not judge([CONTROL], passed, {"sast": "pass", "sca": "FAIL"})[0].proven
    assert judge([CONTROL], passed, {"sca": "pass"})[0].evidence[2] == (
        "semgrep:r: sast did not run in this run"
    )
    assert judge([CONTROL], None, stages)[0].status == "unproven"


def test_junit_node_ids_are_pytests_own(tmp_path: Path) -> None:
    """Run pytest for real and compare our node ids with the ones it reports."""
    tests = tmp_path / "tests" / "pkg"
    tests.mkdir(parents=True)
    (tests / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_passes():\n    pass\n\n"
        "def test_fails():\n    assert False\n\n"
        "@pytest.mark.skip(reason='shows as skipped')\n"
        "def test_skipped():\n    pass\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\n"
        "def test_param(n):\n    pass\n\n"
        "class TestGroup:\n    def test_method(self):\n        pass\n",
        encoding="utf-8",
    )
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path),
         f"--junitxml={junit}", "tests"],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    results = load(junit)
    assert results.outcomes == {
        "tests/pkg/test_sample.py::test_passes": "passed",
        "tests/pkg/test_sample.py::test_fails": "failed",
        "tests/pkg/test_sample.py::test_skipped": "skipped",
        "tests/pkg/test_sample.py::test_param[1]": "passed",
        "tests/pkg/test_sample.py::test_param[2]": "passed",
        "tests/pkg/test_sample.py::TestGroup::test_method": "passed",
    }
    assert results.written_at != "unknown"


def test_junit_that_is_not_junit_or_carries_entities_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        "<testsuites><testsuite><testcase classname='t' name='&b;'/></testsuite></testsuites>",
        encoding="utf-8",
    )
    with pytest.raises(JUnitError, match="not readable JUnit XML"):
        load(bomb)
    empty = tmp_path / "empty.xml"
    empty.write_text("<testsuites/>", encoding="utf-8")
    with pytest.raises(JUnitError, match="no test cases"):
        load(empty)


def test_the_bundle_keeps_the_test_results_and_judges_each_control(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    (root / "tests").mkdir()
    (root / "tests" / "test_ok.py").write_text("def test_ok():\n    pass\n", encoding="utf-8")
    (root / "tests" / "test_bad.py").write_text("def test_bad():\n    assert 0\n", "utf-8")
    junit = tmp_path / "junit-tests.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(root),
         f"--junitxml={junit}", "tests"],
        cwd=root, capture_output=True, check=False,
    )  # fmt: skip
    controls = write_controls(
        tmp_path / "cfg",
        """controls:
  - {id: held, statement: s, where: w, source: [x], tests: [tests/test_ok.py], scans: [secrets]}
  - {id: broken, statement: s, where: w, source: [x], tests: [tests/test_bad.py::test_bad]}
  - {id: no-sast, statement: s, where: w, source: [x], rules: [semgrep:r]}
""",
    )
    done = subprocess.run(
        [sys.executable, "-m", "secgate", "scan", "--stages", "secrets", "--root", str(root),
         "--security-dir", str(FIXTURES.parents[2] / "security"), "--tools-bin", str(TOOLS_BIN),
         "--controls", str(controls), "--test-results", str(junit)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "controls: 1 of 3 proven by this run (unproven: broken, no-sast)" in done.stdout
    latest = root / "security" / "reports" / "latest"
    assert (latest / "tests" / "junit-tests.xml").read_bytes() == junit.read_bytes()
    status = {
        c["id"]: c["status"]
        for c in json.loads((latest / "controls.json").read_text(encoding="utf-8"))["controls"]
    }
    assert status == {"held": "proven", "broken": "unproven", "no-sast": "unproven"}
    manifest = json.loads((latest / "manifest.json").read_text(encoding="utf-8"))["artifacts"]
    assert {"tests/junit-tests.xml", "controls.json"} <= set(manifest)
    assert "controls: 1 of 3 proven" in (latest / "summary.md").read_text(encoding="utf-8")

"""secgate combine: one auditor report from the bundles of separate stage jobs (as CI runs them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from secgate_support import FIXTURES, TOOLS_BIN, copy_fixture

SECURITY = str(FIXTURES.parents[2] / "security")


def secgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secgate", *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def stage_bundles(module_tmp: Path) -> tuple[Path, list[Path]]:
    """The clean fixture scanned twice, one stage per run, as two CI jobs would."""
    root = copy_fixture("clean", module_tmp)
    bundles = []
    for stage in ("secrets", "config"):
        reports = module_tmp / f"reports-{stage}"
        done = secgate("scan", "--stages", stage, "--root", str(root), "--tools-bin",
                       str(TOOLS_BIN), "--security-dir", SECURITY, "--report-dir", str(reports),
                       cwd=module_tmp)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        bundles.append((reports / "latest").resolve())
    return root, bundles


def test_the_combined_report_holds_every_stage_and_verifies(
    stage_bundles: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, bundles = stage_bundles
    out = tmp_path / "evidence"
    done = secgate("combine", str(out), *map(str, bundles), "--root", str(root),
                   "--tools-bin", str(TOOLS_BIN), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| secrets |" in summary
    assert "| config |" in summary
    stages = json.loads((out / "results.json").read_text(encoding="utf-8"))["stages"]
    assert [s["stage"] for s in stages] == ["secrets", "config"]
    for bundle in bundles:  # each stage job's bundle is kept whole, still checkable alone
        copy = out / bundle.name
        assert (copy / "manifest.json").is_file()
        assert secgate("verify-report", str(copy), cwd=tmp_path).returncode == 0
    sarif_artifacts = [a for s in stages for a in s["artifacts"]]
    assert all((out / a).is_file() for a in sarif_artifacts), sarif_artifacts
    assert secgate("verify-report", str(out), cwd=tmp_path).returncode == 0


def test_one_stage_from_two_jobs_becomes_one_result(
    stage_bundles: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    """CI runs DAST in two jobs (schemathesis + wapiti, then ZAP): both count, neither hides."""
    root, bundles = stage_bundles
    second = tmp_path / "second-secrets-job"
    shutil.copytree(bundles[0], second)
    results = json.loads((second / "results.json").read_text(encoding="utf-8"))
    results["run_id"] = "another-job"
    results["stages"][0]["ran"] = False
    results["stages"][0]["error"] = "second tool crashed"
    (second / "results.json").write_text(json.dumps(results), encoding="utf-8")
    done = secgate("combine", str(tmp_path / "out"), str(bundles[0]), str(second),
                   "--root", str(root), "--tools-bin", str(TOOLS_BIN), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1  # one of the two jobs did not run: the stage did not
    stages = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert [(s["stage"], s["ran"], s["error"]) for s in stages["stages"]] == [
        ("secrets", False, "second tool crashed")
    ]


def test_a_stage_twice_or_two_commits_cannot_be_combined(
    stage_bundles: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, bundles = stage_bundles
    twice = secgate("combine", str(tmp_path / "a"), str(bundles[0]), str(bundles[0]),
                    "--root", str(root), cwd=tmp_path)  # fmt: skip
    assert twice.returncode == 2
    assert "the same bundle was given twice" in twice.stdout
    other = tmp_path / "other-commit"
    shutil.copytree(bundles[1], other)
    results = json.loads((other / "results.json").read_text(encoding="utf-8"))
    results["commit"] = "0" * 40
    (other / "results.json").write_text(json.dumps(results), encoding="utf-8")
    mixed = secgate("combine", str(tmp_path / "b"), str(bundles[0]), str(other),
                    "--root", str(root), cwd=tmp_path)  # fmt: skip
    assert mixed.returncode == 2
    assert "the bundles scanned different commits" in mixed.stdout
    not_empty = tmp_path / "b"
    not_empty.mkdir(exist_ok=True)
    (not_empty / "x").write_text("x", encoding="utf-8")
    refused = secgate("combine", str(not_empty), str(bundles[0]), "--root", str(root),
                      cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2
    assert "exists and is not empty" in refused.stdout


def test_a_failed_stage_fails_the_combined_gate(
    stage_bundles: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    root, bundles = stage_bundles
    broken = tmp_path / "broken"
    shutil.copytree(bundles[0], broken)
    results = json.loads((broken / "results.json").read_text(encoding="utf-8"))
    results["stages"][0]["ran"] = False
    results["stages"][0]["error"] = "detect-secrets crashed"
    (broken / "results.json").write_text(json.dumps(results), encoding="utf-8")
    done = secgate("combine", str(tmp_path / "out"), str(broken), str(bundles[1]),
                   "--root", str(root), "--tools-bin", str(TOOLS_BIN), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "stage secrets did not run: detect-secrets crashed" in (
        tmp_path / "out" / "report.html"
    ).read_text(encoding="utf-8")

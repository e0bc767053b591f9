"""Every path sonar-project.properties names is one our build really produces.

Sources and tests must exist now. The coverage and xunit paths must be the
ones `make test` writes. The SARIF paths must be where a real secgate run puts
them (run here into a temporary report root, so the check does not depend on
an earlier `make scan`), and no tool's findings may reach SonarQube by two
paths (the merged SARIF and a per-tool file, or bandit's JSON importer and
SARIF): SonarQube would show every such finding twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPORTS_LATEST = "security/reports/latest/"
MERGED_SARIF = REPORTS_LATEST + "secgate.sarif"
# Sonar's native importers of tools secgate also writes into SARIF, with the tool they import.
NATIVE_IMPORTERS = {"sonar.python.bandit.reportPaths": "bandit"}


def sonar_properties(repo_root: Path) -> dict[str, str]:
    properties: dict[str, str] = {}
    for line in (repo_root / "sonar-project.properties").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


def test_sources_and_tests_exist(repo_root: Path) -> None:
    properties = sonar_properties(repo_root)
    for key in ("sonar.sources", "sonar.tests"):
        for path in properties[key].split(","):
            assert (repo_root / path).is_dir(), (key, path)


def test_coverage_and_xunit_paths_are_what_make_test_writes(repo_root: Path) -> None:
    properties = sonar_properties(repo_root)
    makefile = (repo_root / "Makefile").read_text()
    coverage = properties["sonar.python.coverage.reportPaths"]
    xunit = properties["sonar.python.xunit.reportPath"]
    assert f"--cov-report=xml:{coverage}" in makefile
    assert f"--junitxml={xunit}" in makefile


def report_paths(properties: dict[str, str], key: str) -> list[str]:
    return [path.strip() for path in properties.get(key, "").split(",") if path.strip()]


def imports(properties: dict[str, str]) -> dict[str, list[str]]:
    """Every security report SonarQube is told to import, by property."""
    keys = ["sonar.sarifReportPaths", "sonar.externalIssuesReportPaths", *NATIVE_IMPORTERS]
    return {key: report_paths(properties, key) for key in keys if report_paths(properties, key)}


def duplicated_imports(properties: dict[str, str]) -> list[str]:
    """Why the configuration would import some finding twice ([] when it would not)."""
    sarifs = report_paths(properties, "sonar.sarifReportPaths")
    problems = [f"{path} is listed twice" for path, n in Counter(sarifs).items() if n > 1]
    per_tool = [path for path in sarifs if path != MERGED_SARIF]
    if MERGED_SARIF in sarifs and per_tool:
        problems.append(f"{MERGED_SARIF} already holds what {', '.join(per_tool)} hold")
    for key, tool in NATIVE_IMPORTERS.items():
        if report_paths(properties, key) and (
            MERGED_SARIF in sarifs or REPORTS_LATEST + f"{tool}.sarif" in sarifs
        ):
            problems.append(f"{key} imports {tool} findings the SARIF import already has")
    return problems


def test_no_finding_is_imported_twice(repo_root: Path) -> None:
    properties = sonar_properties(repo_root)
    assert report_paths(properties, "sonar.sarifReportPaths") == [MERGED_SARIF]
    assert duplicated_imports(properties) == []


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"sonar.python.bandit.reportPaths": REPORTS_LATEST + "bandit.json"}, "bandit"),
        ({"sonar.sarifReportPaths": f"{MERGED_SARIF},{REPORTS_LATEST}semgrep.sarif"}, "holds"),
        ({"sonar.sarifReportPaths": f"{MERGED_SARIF},{MERGED_SARIF}"}, "twice"),
    ],
)
def test_duplicate_imports_are_detected(
    repo_root: Path, extra: dict[str, str], problem: str
) -> None:
    """The check above can fail: each way of importing a finding twice is caught."""
    properties = {**sonar_properties(repo_root), **extra}
    assert any(problem in text for text in duplicated_imports(properties))


def test_report_paths_are_where_secgate_writes(repo_root: Path, tmp_path: Path) -> None:
    """A real SAST run: every imported file exists and each tool reaches Sonar once."""
    properties = sonar_properties(repo_root)
    imported = imports(properties)
    paths = [path for paths in imported.values() for path in paths]
    assert all(path.startswith(REPORTS_LATEST) for path in paths)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "secgate",
            "scan",
            "--stages",
            "sast",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    latest = tmp_path / "latest"
    tools: list[str] = []
    for key, key_paths in imported.items():
        for path in key_paths:
            produced = latest / path.removeprefix(REPORTS_LATEST)
            assert produced.is_file(), (path, sorted(p.name for p in latest.iterdir()))
            if key in NATIVE_IMPORTERS:
                tools.append(NATIVE_IMPORTERS[key])
            elif key == "sonar.sarifReportPaths":
                runs = json.loads(produced.read_text())["runs"]
                tools += [run["tool"]["driver"]["name"] for run in runs]
    assert {"bandit", "semgrep"} <= set(tools)  # each tool that ran has a run, findings or not
    assert [tool for tool, n in Counter(tools).items() if n > 1] == []

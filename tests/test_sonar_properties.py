"""Every path sonar-project.properties names is one our build really produces.

Sources and tests must exist now. The coverage and xunit paths must be the
ones `make test` writes. The bandit and SARIF paths must be where a real
secgate run puts them (run here into a temporary report root, so the check
does not depend on an earlier `make scan`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPORTS_LATEST = "security/reports/latest/"


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


def test_report_paths_are_where_secgate_writes(repo_root: Path, tmp_path: Path) -> None:
    properties = sonar_properties(repo_root)
    report_paths = [
        properties["sonar.python.bandit.reportPaths"],
        properties["sonar.sarifReportPaths"],
    ]
    assert all(path.startswith(REPORTS_LATEST) for path in report_paths)
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
    for path in report_paths:
        produced = tmp_path / "latest" / path.removeprefix(REPORTS_LATEST)
        assert produced.is_file(), (path, sorted(p.name for p in (tmp_path / "latest").iterdir()))
    assert "results" in json.loads((tmp_path / "latest" / "bandit.json").read_text())

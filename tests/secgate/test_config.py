"""Config stage: real zizmor, check-jsonschema and hadolint on fixture trees."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from secgate_support import FIXTURES, REPO, context, copy_fixture, flaw_lines

from secgate.gate import evaluate
from secgate.pipeline import run_stage
from secgate.policy import DEFAULT_POLICY

TODAY = dt.date(2026, 6, 1)


def test_pinned_least_privilege_workflow_passes(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    result = run_stage("config", context(root, tmp_path / "reports"))
    assert result.ran, result.error
    assert {"zizmor", "check-jsonschema"} <= set(result.tool_versions)
    assert "no Dockerfile: hadolint not run" in result.notes
    assert evaluate([result], DEFAULT_POLICY, [], TODAY).passed, result.findings


def test_unpinned_action_fails_naming_rule_and_line(tmp_path: Path) -> None:
    root = copy_fixture("unpinned_action", tmp_path)
    [((path, line), rule)] = flaw_lines(FIXTURES / "unpinned_action").items()
    result = run_stage("config", context(root, tmp_path / "reports"))
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert (rule, f"{path}:{line}") in {(f.rule_id, f.location) for f in verdict.blocking}


def test_workflow_schema_violation_fails(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    (root / ".github" / "workflows" / "broken.yml").write_text(
        "name: broken\non: push\npermissions: {}\njobs:\n  build:\n    steps: 3\n",
        encoding="utf-8",
    )
    result = run_stage("config", context(root, tmp_path / "reports"))
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    schema = [f for f in verdict.blocking if f.tool == "check-jsonschema"]
    assert schema
    assert schema[0].path == ".github/workflows/broken.yml"


def test_dockerfile_is_linted_when_present(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    (root / "Dockerfile").write_text("FROM python:latest\nRUN pip install flask\n", "utf-8")
    result = run_stage("config", context(root, tmp_path / "reports"))
    assert "hadolint" in result.tool_versions
    rules = {f.rule_id: f.location for f in result.findings if f.tool == "hadolint"}
    assert rules.get("DL3007") == "Dockerfile:1"  # "latest" tag
    assert not evaluate([result], DEFAULT_POLICY, [], TODAY).passed


def test_tree_without_workflows_says_what_did_not_run(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    result = run_stage("config", context(root, tmp_path / "reports"))
    assert result.ran
    assert result.findings == []
    assert "no .github/workflows or dependabot.yml: zizmor not run" in result.notes


def test_the_repository_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """The config stage lints our own Dockerfile: no finding at all, not even style."""
    root = copy_fixture("clean", tmp_path)
    shutil.copy(REPO / "Dockerfile", root / "Dockerfile")
    result = run_stage("config", context(root, tmp_path / "reports"))
    assert result.ran, result.error
    assert "hadolint" in result.tool_versions
    assert [f for f in result.findings if f.tool == "hadolint"] == []
    assert any(note.startswith("image: not built") for note in result.notes)


def test_a_dockerfile_that_ends_as_root_fails(tmp_path: Path) -> None:
    root = copy_fixture("clean", tmp_path)
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    (root / "Dockerfile").write_text(dockerfile.replace("USER 10001:10001", "USER root"), "utf-8")
    result = run_stage("config", context(root, tmp_path / "reports"))
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert "DL3002" in {f.rule_id for f in verdict.blocking}  # last USER is root

"""SCA stage end to end: real advisories (committed fixture), real pip-audit and cyclonedx-py."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from secgate import licenses
from secgate.model import ScanContext, Severity, StageResult
from secgate.pipeline import run_stage
from secgate.stages import sca

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VULNERABLE_LOCK = FIXTURES / "sca_vulnerable" / "requirements.txt"
# Real PyPA advisories, copied unchanged (see its README.md).
ADVISORY_DB = FIXTURES / "advisory-db"


def context(report_dir: Path, **options: str) -> ScanContext:
    return ScanContext(
        root=REPO,
        report_dir=report_dir,
        security_dir=REPO / "security",
        tools_bin=REPO / ".venv-scan" / "bin",
        offline=True,
        options={"advisory_db": str(ADVISORY_DB), **options},
    )


@pytest.fixture(scope="module")
def vulnerable(tmp_path_factory: pytest.TempPathFactory) -> StageResult:
    report_dir = tmp_path_factory.mktemp("sca")
    return run_stage("sca", context(report_dir, lock_file=str(VULNERABLE_LOCK)))


def test_known_advisories_are_found(vulnerable: StageResult) -> None:
    assert vulnerable.ran, vulnerable.error
    found = {
        (f.rule_id, f.location.split(": ")[-1])
        for f in vulnerable.findings
        if f.tool == "osv-offline"
    }
    assert {
        ("PYSEC-2019-217", "jinja2==2.10"),
        ("PYSEC-2021-66", "jinja2==2.10"),
        ("PYSEC-2018-66", "flask==0.12.2"),
        ("PYSEC-2023-62", "flask==0.12.2"),
        ("PYSEC-2018-28", "requests==2.19.1"),
        ("PYSEC-2023-74", "requests==2.19.1"),
    } <= found
    # jinja2's PYSEC-2019-220 is fixed in 2.8.1, below the locked 2.10.
    assert ("PYSEC-2019-220", "jinja2==2.10") not in found


def test_finding_carries_aliases_fix_and_default_severity(vulnerable: StageResult) -> None:
    finding = next(f for f in vulnerable.findings if f.rule_id == "PYSEC-2019-217")
    assert "CVE-2019-10906" in finding.message
    assert "GHSA-462w-v97r-4m45" in finding.message
    assert finding.help == "upgrade jinja2 to >= 2.10.1"
    assert finding.severity is Severity.HIGH  # the advisory has no CVSS vector
    assert finding.message.endswith("[severity: none known, high by default]")
    assert finding.owasp == sca.OWASP


def test_withdrawn_advisory_is_reported_not_applicable(vulnerable: StageResult) -> None:
    assert not [f for f in vulnerable.findings if f.rule_id == "PYSEC-2023-73"]
    assert vulnerable.metadata["withdrawn_not_applicable"] == "PYSEC-2023-73 (redis)"
    assert any("PYSEC-2023-73" in note and "withdrawn" in note for note in vulnerable.notes)


def test_report_metadata_names_source_date_and_count(vulnerable: StageResult) -> None:
    metadata = vulnerable.metadata
    assert metadata["advisory_source"] == str(ADVISORY_DB.resolve())
    assert metadata["advisory_chosen_by"] == "option advisory_db"
    # The fixture has no SOURCE.md and is no git checkout: its newest advisory dates it.
    assert metadata["advisory_data_date"] == "2026-09-10"
    assert metadata["advisory_as_of"] == "2026-09-10"
    assert metadata["advisory_fetched_at"] == ""
    assert metadata["advisory_count"] == "19"
    assert metadata["sca_source"] == "offline"  # a named local copy: air-gapped, no pip-audit


def test_pip_audit_compatible_json(vulnerable: StageResult) -> None:
    report = next(p for p in vulnerable.artifacts if p.name == "advisory-db.json")
    document = json.loads(report.read_text(encoding="utf-8"))
    jinja = next(d for d in document["dependencies"] if d["name"] == "jinja2")
    assert jinja["version"] == "2.10"
    vuln = next(v for v in jinja["vulns"] if v["id"] == "PYSEC-2019-217")
    assert set(vuln) == {"id", "fix_versions", "aliases", "description"}
    assert vuln["fix_versions"] == ["2.10.1"]
    redis = next(d for d in document["dependencies"] if d["name"] == "redis")
    assert redis["vulns"] == []


def test_sbom_lists_every_locked_package(vulnerable: StageResult) -> None:
    sbom = next(p for p in vulnerable.artifacts if p.name == "sbom.cdx.json")
    document = json.loads(sbom.read_text(encoding="utf-8"))
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    purls = {c["purl"] for c in document["components"]}
    assert "pkg:pypi/jinja2@2.10" in purls
    root = ("eventsvc", "0.1.0")
    assert sca.check_sbom(document, {"jinja2": "2.10", "missing": "1.0"}, root) == [
        "SBOM lacks locked packages: missing==1.0"
    ]


def test_sbom_problems_are_named() -> None:
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "metadata": {}, "components": []}
    assert sca.check_sbom(document, {}, ("eventsvc", "0.1.0")) == [
        "not a CycloneDX 1.6 JSON document",
        "SBOM root component is (None, None), expected ('eventsvc', '0.1.0') (pyproject.toml)",
    ]


@pytest.fixture(scope="module")
def runtime_sbom(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The SBOM of the real runtime lock, whose releases are the ones installed in .venv."""
    report_dir = tmp_path_factory.mktemp("sca-runtime")
    result = run_stage("sca", context(report_dir))
    assert result.ran, result.error
    sbom = next(p for p in result.artifacts if p.name == "sbom.cdx.json")
    assert "CycloneDX 1.6 JSON, schema-valid" in result.metadata["sbom"]
    return dict(json.loads(sbom.read_text(encoding="utf-8")))


def test_sbom_root_component_is_the_project_from_pyproject(runtime_sbom: dict[str, Any]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    component = runtime_sbom["metadata"]["component"]
    assert (component["name"], component["version"]) == ("eventsvc", project["version"])
    assert component["type"] == "application"
    assert component["licenses"] == [
        {"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}
    ]


def test_sbom_components_carry_their_licences(runtime_sbom: dict[str, Any]) -> None:
    by_name = {c["name"]: c for c in runtime_sbom["components"]}
    assert all(c.get("licenses") for c in by_name.values()), [
        n for n, c in by_name.items() if not c.get("licenses")
    ]
    assert by_name["flask"]["licenses"] == [
        {"license": {"id": "BSD-3-Clause", "acknowledgement": "declared"}}
    ]


def test_sbom_schema_check_rejects_an_invalid_document(tmp_path: Path) -> None:
    """The official schema (cyclonedx-python-lib) is really applied: a bad licence id fails."""
    good = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [
        {"type": "library", "name": "demo", "licenses": [{"license": {"id": "MIT"}}]}]}  # fmt: skip
    path = tmp_path / "sbom.cdx.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    ctx = context(tmp_path)
    assert sca.schema_problems(ctx, path) == []
    good["components"][0]["licenses"] = [{"license": {"id": "Not-An-SPDX-Id"}}]  # type: ignore[index]
    path.write_text(json.dumps(good), encoding="utf-8")
    [problem] = sca.schema_problems(ctx, path)
    assert problem.startswith("SBOM fails the CycloneDX 1.6 schema: ")
    assert "Not-An-SPDX-Id" in problem


def test_licence_choice_per_verdict() -> None:
    verdict = licenses.LicenseVerdict
    assert sca.licence_choice(verdict("a", "1", "MIT", "License", "allowed")) == [
        {"license": {"id": "MIT", "acknowledgement": "declared"}}
    ]
    assert sca.licence_choice(verdict("a", "1", "MIT OR GPL-3.0-only", "x", "allowed")) == [
        {"expression": "MIT OR GPL-3.0-only", "acknowledgement": "declared"}
    ]
    assert sca.licence_choice(verdict("a", "1", "Custom Terms", "License", "unknown")) == [
        {"license": {"name": "Custom Terms", "acknowledgement": "declared"}}
    ]
    assert sca.licence_choice(verdict("a", "1", "MIT", "License", "version-mismatch")) == []


def test_licence_of_a_mismatched_install_is_not_trusted(vulnerable: StageResult) -> None:
    rules = {
        (f.rule_id, f.location.split(": ")[-1]) for f in vulnerable.findings if f.tool == "licenses"
    }
    assert ("license-unverified", "jinja2==2.10") in rules  # .venv has jinja2 3.x
    assert ("license-unknown", "redis==4.5.4") in rules  # not installed at all


def test_pip_audit_online_fails_loudly_here(tmp_path: Path) -> None:
    """No PyPI JSON API on this machine: --strict must fail the stage, not pass it."""
    result = run_stage("sca", context(tmp_path, sca_source="both", lock_file=str(VULNERABLE_LOCK)))
    assert not result.ran
    assert result.error is not None
    assert "pip-audit" in result.error
    assert not [f for f in result.findings if f.tool == "pip-audit"]


def test_missing_advisory_db_fails_the_stage(tmp_path: Path) -> None:
    ctx = context(tmp_path, lock_file=str(VULNERABLE_LOCK), advisory_db=str(tmp_path / "nowhere"))
    result = run_stage("sca", ctx)
    assert not result.ran
    assert "holds no advisory database" in (result.error or "")


def test_without_any_advisory_data_the_stage_says_how_to_get_it(tmp_path: Path) -> None:
    """No option, no SECGATE_ADVISORY_DB, an empty cache (conftest): nothing is guessed."""
    ctx = context(tmp_path, lock_file=str(VULNERABLE_LOCK))
    ctx = ScanContext(ctx.root, ctx.report_dir, ctx.security_dir, ctx.tools_bin, True, {
        "lock_file": str(VULNERABLE_LOCK), "sca_source": "offline"})  # fmt: skip
    result = run_stage("sca", ctx)
    assert not result.ran
    assert "no advisory data: run `make advisories`" in (result.error or "")
    assert "SECGATE_ADVISORY_DB=DIR" in (result.error or "")


def test_missing_tools_fail_the_stage(tmp_path: Path) -> None:
    ctx = context(tmp_path, lock_file=str(VULNERABLE_LOCK))
    ctx = ScanContext(
        ctx.root, ctx.report_dir, ctx.security_dir, tmp_path / "no-bin", True, ctx.options
    )
    result = run_stage("sca", ctx)
    assert not result.ran
    assert "cyclonedx-py could not run" in (result.error or "")


def test_unpinned_requirement_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("flask>=2\n", encoding="utf-8")
    result = run_stage("sca", context(tmp_path, lock_file=str(lock)))
    assert not result.ran
    assert "not an exact pin" in (result.error or "")


def test_lock_parser_skips_hashes_and_normalises_names(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text(
        "--extra-index-url file:///x\n"
        "MarkupSafe==3.0.4 \\\n    --hash=sha256:ab\n    # via jinja2\n"
        "typing_extensions[x]==4.16.0 ; python_version >= '3.11'\n",
        encoding="utf-8",
    )
    assert sca.read_lock(lock) == {"markupsafe": "3.0.4", "typing-extensions": "4.16.0"}


def fake_pip_audit(tmp_path: Path, report: Mapping[str, object], exit_code: int) -> Path:
    """A tools_bin whose pip-audit writes ``report`` to its --output and exits ``exit_code``.

    The real pip-audit cannot reach PyPI here; this checks how its report is read.
    cyclonedx-py is a stub that fails fast (the SBOM has its own tests above).
    """
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "cyclonedx-py").write_text("#!/bin/sh\nexit 3\n", encoding="utf-8")
    (tools / "cyclonedx-py").chmod(0o755)
    script = tools / "pip-audit"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "--version" ] && { echo "pip-audit (fake)"; exit 0; }\n'
        'while [ $# -gt 0 ] && [ "$1" != "--output" ]; do shift; done\n'
        f"cat > \"$2\" <<'EOF'\n{json.dumps(report)}\nEOF\n"
        f"exit {exit_code}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return tools


def online_context(tmp_path: Path, tools: Path) -> ScanContext:
    ctx = context(tmp_path / "reports", sca_source="both", lock_file=str(VULNERABLE_LOCK))
    return ScanContext(ctx.root, ctx.report_dir, ctx.security_dir, tools, False, ctx.options)


def test_both_sources_merge_one_flaw_into_one_finding(
    tmp_path: Path, vulnerable: StageResult
) -> None:
    """pip-audit names jinja2's flaw by its GHSA id; the database by PYSEC-2019-217.

    One finding with the database's id (so its fingerprint and waiver do not depend on
    whether pip-audit ran); a flaw only pip-audit knows is a finding of its own.
    """
    same_flaw = {
        "id": "GHSA-462w-v97r-4m45",
        "fix_versions": ["2.10.1"],
        "aliases": ["CVE-2019-10906", "PYSEC-2019-217"],
    }
    only_live = {"id": "GHSA-aaaa-bbbb-cccc", "fix_versions": ["2.20.0"], "aliases": []}
    report = {
        "dependencies": [
            {"name": "Jinja2", "version": "2.10", "vulns": [same_flaw]},
            {"name": "requests", "version": "2.19.1", "vulns": [only_live]},
        ]
    }
    result = run_stage("sca", online_context(tmp_path, fake_pip_audit(tmp_path, report, 1)))
    assert result.tool_versions["pip-audit"] == "pip-audit (fake)"
    jinja = [f for f in result.findings if "jinja2==2.10" in f.location and "10906" in f.message]
    assert [(f.tool, f.rule_id) for f in jinja] == [("osv-offline", "PYSEC-2019-217")]
    offline = next(f for f in vulnerable.findings if f.rule_id == "PYSEC-2019-217")
    assert jinja[0].fingerprint == offline.fingerprint
    [live] = [f for f in result.findings if f.tool == "pip-audit"]
    assert live.rule_id == "GHSA-aaaa-bbbb-cccc"
    assert live.help == "upgrade requests to >= 2.20.0"
    assert "pip-audit GHSA-462w-v97r-4m45 (jinja2) is PYSEC-2019-217: reported once" in result.notes
    assert {p.name for p in result.artifacts} >= {"advisory-db.json", "pip-audit.json"}


def test_pip_audit_skipped_dependency_fails_even_with_exit_0(tmp_path: Path) -> None:
    skipped = {
        "name": "flask",
        "skip_reason": "Dependency not found on PyPI and could not be audited",
    }
    report = {"dependencies": [{"name": "jinja2", "version": "2.10", "vulns": []}, skipped]}
    result = run_stage("sca", online_context(tmp_path, fake_pip_audit(tmp_path, report, 0)))
    assert not result.ran
    assert "pip-audit could not audit flask" in (result.error or "")


def test_malformed_cvss_vector_keeps_the_default_severity_and_a_note(tmp_path: Path) -> None:
    """A real advisory whose only vector is broken: the stage runs, the finding is high."""
    real = ADVISORY_DB / "vulns" / "werkzeug" / "PYSEC-2023-221.yaml"
    broken = real.read_text("utf-8").replace("/C:N/I:N/A:H", "/C:N/I:N/A:Q")
    assert broken != real.read_text("utf-8")
    (tmp_path / "db" / "vulns" / "werkzeug").mkdir(parents=True)
    (tmp_path / "db" / "vulns" / "werkzeug" / real.name).write_text(broken, "utf-8")
    lock = tmp_path / "requirements.txt"
    lock.write_text("werkzeug==2.3.7\n", encoding="utf-8")
    ctx = context(tmp_path / "out", lock_file=str(lock), advisory_db=str(tmp_path / "db"))
    result = run_stage("sca", ctx)
    assert result.ran, result.error
    finding = next(f for f in result.findings if f.rule_id == "PYSEC-2023-221")
    assert finding.severity is sca.DEFAULT_SEVERITY is Severity.HIGH
    assert finding.message.endswith("[severity: none known, high by default]")
    assert "PYSEC-2023-221 (werkzeug): unreadable severity not used: CVSS:3.1/" in "".join(
        result.notes
    )

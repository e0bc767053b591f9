"""Every SARIF rule secgate writes links the page documenting it (secgate.ruledocs)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from secgate import ruledocs
from secgate.gate import evaluate
from secgate.model import Confidence, Finding, Severity, StageResult
from secgate.policy import DEFAULT_POLICY
from secgate.reports import sarif

SCHEMAS = Path(__file__).parent / "schemas"
RULES_SCHEMA = json.loads((SCHEMAS / "secgate-sarif-rules.schema.json").read_text("utf-8"))
SUBSET_SCHEMA = json.loads((SCHEMAS / "sarif-2.1.0-subset.schema.json").read_text("utf-8"))


def finding(tool: str, rule_id: str, stage: str = "sast", **extra: str) -> Finding:
    return Finding(
        stage=stage,
        tool=tool,
        rule_id=rule_id,
        severity=Severity.MEDIUM,
        confidence=Confidence.HIGH,
        message="Something is wrong here. More detail follows.",
        location="src/app.py:3",
        fingerprint="0" * 64,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("tool", "rule_id", "uri"),
    [
        ("bandit", "B602-subprocess_popen_with_shell_equals_true",
         "https://bandit.readthedocs.io/en/latest/plugins/b602_subprocess_popen_with_shell_equals_true.html"),
        ("bandit", "B301-blacklist",
         "https://bandit.readthedocs.io/en/latest/blacklists/blacklist_calls.html"),
        ("bandit", "B403-blacklist",
         "https://bandit.readthedocs.io/en/latest/blacklists/blacklist_imports.html"),
        ("zizmor", "unpinned-uses", "https://docs.zizmor.sh/audits/#unpinned-uses"),
        ("hadolint", "DL3008", "https://github.com/hadolint/hadolint/wiki/DL3008"),
        ("hadolint", "SC2086", "https://www.shellcheck.net/wiki/SC2086"),
        ("detect-secrets", "new-secret",
         "https://github.com/Yelp/detect-secrets/blob/master/docs/audit.md"),
        ("osv-offline", "PYSEC-2023-221", "https://osv.dev/vulnerability/PYSEC-2023-221"),
        ("pip-audit", "GHSA-hrfv-mqp8-q5rw", "https://osv.dev/vulnerability/GHSA-hrfv-mqp8-q5rw"),
        ("licenses", "license-unknown", "https://spdx.org/licenses/"),
        ("zap", "zap/10038", "https://www.zaproxy.org/docs/alerts/10038/"),
        ("wapiti", "wapiti/SQL Injection", "https://wapiti-scanner.github.io/"),
        ("schemathesis", "schemathesis/server-error",
         "https://schemathesis.readthedocs.io/en/stable/"),
    ],
)  # fmt: skip
def test_tool_url_patterns(tool: str, rule_id: str, uri: str) -> None:
    assert ruledocs.help_uri(finding(tool, rule_id)) == uri


def test_the_stage_link_wins_and_must_be_https() -> None:
    """bandit's more_info and a semgrep rule's references reach the Finding as help_uri."""
    own = "https://bandit.readthedocs.io/en/1.9.4/plugins/b101_assert_used.html"
    assert ruledocs.help_uri(finding("bandit", "B101-assert_used", help_uri=own)) == own
    plain = finding("bandit", "B101-assert_used", help_uri="http://example.org/x")
    assert ruledocs.help_uri(plain).startswith("https://bandit.readthedocs.io/en/latest/")


def test_fallbacks_cwe_then_owasp() -> None:
    """A semgrep rule without references, secgate's own scan-error, an unknown tool."""
    assert ruledocs.help_uri(finding("semgrep", "pickle-load", cwe="CWE-502")) == (
        "https://cwe.mitre.org/data/definitions/502.html"
    )
    assert ruledocs.help_uri(finding("bandit", "scan-error")) == ruledocs.OWASP_TOP10
    assert ruledocs.help_uri(finding("newtool", "x")) == ruledocs.OWASP_TOP10


def test_every_rule_of_every_tool_carries_the_fields(tmp_path: Path) -> None:
    """One finding per tool secgate knows: the merged SARIF passes the stricter schema."""
    findings = [
        finding(tool, f"{tool}-rule", stage="dast" if tool in {"zap", "wapiti"} else "sast")
        for tool in [*ruledocs.BY_TOOL, "semgrep"]
    ]
    result = StageResult("sast", True, findings, tool_versions={f.tool: "1" for f in findings})
    verdict = evaluate([result], DEFAULT_POLICY, [], dt.date(2026, 12, 2))
    path = sarif.write_merged(tmp_path / "secgate.sarif", [result], verdict, [], tmp_path)
    document = json.loads(path.read_text("utf-8"))
    jsonschema.validate(document, SUBSET_SCHEMA)
    jsonschema.validate(document, RULES_SCHEMA)
    [rule] = document["runs"][0]["tool"]["driver"]["rules"]
    assert rule["shortDescription"]["text"] == "Something is wrong here."
    assert rule["fullDescription"]["text"].startswith("Something is wrong here. More detail")
    assert rule["properties"]["security-severity"] == "5.5"

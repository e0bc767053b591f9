"""The files secgate writes itself have the structure DefectDojo's parsers read.

Each check below restates what the parser reads (DefectDojo/django-DefectDojo,
dojo/tools/<name>/parser.py); a missing key or a wrong type there makes the
import fail or drop findings. Native tool output (bandit, semgrep,
detect-secrets JSON) is the tool's own format and is not restated here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from secgate import osv
from secgate.gate import evaluate
from secgate.model import Confidence, Finding, Severity, StageResult
from secgate.policy import DEFAULT_POLICY
from secgate.reports import sarif
from secgate.stages import sca

ADVISORY_DB = Path(__file__).resolve().parent / "fixtures" / "advisory-db"


def pip_audit_scan_problems(document: Any) -> list[str]:
    """What dojo/tools/pip_audit/parser.py ("pip-audit Scan") would trip over."""
    if not isinstance(document, dict) or not isinstance(document.get("dependencies"), list):
        return ["no 'dependencies' list (the parser would read the legacy format)"]
    problems = []
    for dep in document["dependencies"]:
        if not isinstance(dep.get("name"), str) or not isinstance(dep.get("version"), str):
            problems.append(f"dependency without name/version: {dep}")
        for vuln in dep.get("vulns", []):
            if not isinstance(vuln.get("id"), str):
                problems.append(f"vuln without id: {vuln}")
            if not isinstance(vuln.get("description"), str):  # description += ... needs a str
                problems.append(f"{vuln.get('id')}: description is not a string")
            if not isinstance(vuln.get("fix_versions"), list):
                problems.append(f"{vuln.get('id')}: fix_versions is not a list")
    return problems


def sarif_scan_problems(document: Any) -> list[str]:
    """What dojo/tools/sarif/parser.py ("SARIF") would trip over."""
    problems = []
    for run in document["runs"]:
        driver = run["tool"]["driver"]
        rules = {rule["id"]: rule for rule in driver.get("rules", [])}
        for rule in rules.values():
            try:
                float(rule.get("properties", {}).get("security-severity", "0"))
            except ValueError:
                problems.append(f"{rule['id']}: security-severity is not a number")
        for result in run.get("results", []):
            if not result.get("message", {}).get("text"):
                problems.append(f"{result.get('ruleId')}: no message text (the title)")
            if result.get("ruleId") not in rules:
                problems.append(f"{result.get('ruleId')}: no rule in the driver")
            physical = result["locations"][0].get("physicalLocation", {})
            if "uri" not in physical.get("artifactLocation", {}):
                problems.append(f"{result.get('ruleId')}: no artifactLocation.uri")
            if "region" in physical and "startLine" not in physical["region"]:
                problems.append(f"{result.get('ruleId')}: region without startLine")
    return problems


def test_advisory_db_report_is_what_the_pip_audit_parser_reads() -> None:
    pins = {"jinja2": "2.10", "requests": "2.19.1", "click": "8.1.0"}
    applicable, _ = osv.audit(osv.AdvisoryDb(ADVISORY_DB), pins)
    document = json.loads(json.dumps(sca.pip_audit_document(pins, applicable)))
    assert applicable
    assert pip_audit_scan_problems(document) == []
    [jinja2] = [d for d in document["dependencies"] if d["name"] == "jinja2"]
    assert {v["id"] for v in jinja2["vulns"]} >= {"PYSEC-2019-217"}


def test_pip_audit_check_can_fail() -> None:
    bad = {
        "dependencies": [{"name": "x", "version": "1", "vulns": [{"id": "A", "description": None}]}]
    }
    assert pip_audit_scan_problems(bad) == [
        "A: description is not a string",
        "A: fix_versions is not a list",
    ]
    assert pip_audit_scan_problems([]) != []


def test_merged_sarif_is_what_the_sarif_parser_reads(tmp_path: Path) -> None:
    (tmp_path / "openapi.json").write_text("{}", encoding="utf-8")
    findings = [
        Finding("sast", "bandit", "B602-subprocess_popen_with_shell_equals_true", Severity.HIGH,
                Confidence.HIGH, "subprocess call with shell=True", "src/a.py:3", "1" * 64,
                cwe="CWE-78", path="src/a.py", line=3),
        Finding("dast", "zap", "zap/10038", Severity.MEDIUM, Confidence.MEDIUM,
                "Content Security Policy header not set", "GET https://127.0.0.1:8443/", "2" * 64),
    ]  # fmt: skip
    result = StageResult("sast", True, findings, tool_versions={"bandit": "1", "zap": "2"})
    verdict = evaluate([result], DEFAULT_POLICY, [], dt.date(2026, 12, 2))
    path = sarif.write_merged(tmp_path / "secgate.sarif", [result], verdict, [], tmp_path)
    document = json.loads(path.read_text("utf-8"))
    assert sarif_scan_problems(document) == []
    bandit_rule = document["runs"][0]["tool"]["driver"]["rules"][0]
    # DefectDojo takes the CWE from a tag matching cwe-\d+, the reference from helpUri.
    assert [t for t in bandit_rule["properties"]["tags"] if re.search(r"cwe-\d+", t, re.I)]
    assert bandit_rule["helpUri"].startswith("https://bandit.readthedocs.io/")


def test_sarif_check_can_fail() -> None:
    bad = {"runs": [{"tool": {"driver": {"name": "x", "rules": [
        {"id": "r", "properties": {"security-severity": "high"}}]}},
        "results": [{"ruleId": "s", "message": {}, "locations": [{"physicalLocation": {
            "artifactLocation": {}, "region": {}}}]}]}]}  # fmt: skip
    assert sarif_scan_problems(bad) == [
        "r: security-severity is not a number",
        "s: no message text (the title)",
        "s: no rule in the driver",
        "s: no artifactLocation.uri",
        "s: region without startLine",
    ]


def wapiti_scan_findings(path: Path) -> list[dict[str, Any]]:
    """What dojo/tools/wapiti/parser.py ("Wapiti Scan") reads from an XML report."""
    from defusedxml.ElementTree import parse

    root = parse(path).getroot()
    assert "report" in root.tag, "This doesn't seem to be a valid Wapiti XML file."
    url = root.findtext('report_infos/info[@name="target"]')
    found = []
    for vulnerability in root.findall("vulnerabilities/vulnerability"):
        category = vulnerability.attrib["name"]
        titles = [r.findtext("title") or "" for r in vulnerability.findall("references/reference")]
        cwes = [re.search(r"CWE-(\d+)", t) for t in titles if t.startswith("CWE")]
        for entry in vulnerability.findall("entries/entry"):
            found.append(
                {
                    "title": category + ": " + (entry.findtext("info") or ""),
                    "level": entry.findtext("level"),
                    "cwe": int(cwes[0].group(1)) if cwes and cwes[0] else None,
                    "url": url,
                    "description": vulnerability.findtext("description"),
                    "request": entry.findtext("http_request"),
                }
            )
    return found


def test_wapiti_xml_is_what_defectdojos_wapiti_parser_reads(tmp_path: Path) -> None:
    from secgate.stages.dast import wapiti_xml

    token = "evt_" + "a" * 16 + "_" + "b" * 43  # the shape of an API token, made here
    request = f"GET /api/v1/events?q=x HTTP/1.1\nhost: 127.0.0.1\nAuthorization: Bearer {token}"
    report = {
        "infos": {"target": "https://127.0.0.1:8443/", "version": "Wapiti 3.2.3"},
        "classifications": {
            "Cross Site Scripting": {
                "desc": "XSS lets an attacker run script in a victim's browser.",
                "sol": "Escape output.",
                "ref": {"CWE-79: Improper Neutralization of Input": "https://cwe.mitre.org/data/definitions/79.html"},
            }
        },
        "vulnerabilities": {
            "Cross Site Scripting": [
                {"method": "GET", "path": "/api/v1/events", "info": "XSS via q", "level": 2,
                 "parameter": "q", "http_request": request, "curl_command": "curl ..."}
            ],
            "SQL Injection": [],
        },
        "anomalies": {"Internal Server Error": []},
    }  # fmt: skip
    path = wapiti_xml.write(report, tmp_path / "wapiti.xml")
    (finding,) = wapiti_scan_findings(path)
    assert finding["title"] == "Cross Site Scripting: XSS via q"
    assert finding["level"] == "2"  # the parser maps "2" to Medium
    assert finding["cwe"] == 79
    assert finding["url"] == "https://127.0.0.1:8443/"
    assert "Authorization: [redacted by secgate]" in finding["request"]
    assert token not in path.read_text(encoding="utf-8")

"""JUnit XML: one testcase per stage, per blocking finding, waiver problem and advisory data.

CI systems that show test results (GitHub test reporters, GitLab, Jenkins)
then show the gate as failing tests with a message that says what to do.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # used to write XML, never to parse input
from pathlib import Path

from secgate.gate import GateVerdict
from secgate.model import StageResult


def write(path: Path, results: list[StageResult], verdict: GateVerdict) -> Path:
    suite = ET.Element("testsuite", name="secgate")
    seconds = {r.stage: r.seconds for r in results}
    for stage in verdict.stages:
        case = _case(suite, "secgate.stages", stage.stage, seconds.get(stage.stage, 0.0))
        if not stage.ran:
            _fail(case, f"stage did not run: {stage.error}", stage.error or "")
        elif stage.blocking:
            _fail(case, f"{len(stage.blocking)} blocking finding(s)", "")
        for finding in stage.blocking:
            name = f"{finding.tool} {finding.rule_id} {finding.location}"
            detail = f"{finding.message}\nfix: {finding.help}\nfingerprint: {finding.fingerprint}"
            _fail(_case(suite, f"secgate.{finding.stage}", name, 0.0), finding.message, detail)
    for waiver in verdict.expired_waivers:
        case = _case(suite, "secgate.waivers", f"waiver {waiver.fingerprint}", 0.0)
        _fail(case, f"expired on {waiver.expires} (owner {waiver.owner})", waiver.reason)
    for waiver in verdict.unused_waivers:
        case = _case(suite, "secgate.waivers", f"waiver {waiver.fingerprint}", 0.0)
        _fail(case, f"matched no finding (owner {waiver.owner})", waiver.reason)
    data = verdict.advisory_data
    if data is not None:
        case = _case(suite, "secgate.advisory-data", "advisory data freshness", 0.0)
        if data.problem:
            _fail(case, data.problem, data.summary())
    for problem in verdict.acknowledgement_problems:
        _fail(_case(suite, "secgate.advisory-data", "acknowledgement", 0.0), problem, "")
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("time", f"{sum(seconds.values()):.3f}")
    root = ET.Element("testsuites", name="secgate")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _case(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")


def _fail(case: ET.Element, message: str, detail: str) -> None:
    failure = ET.SubElement(case, "failure", message=message[:500], type="secgate")
    failure.text = detail

"""OWASP ZAP: auth header, OpenAPI import, spider, active scan, when a ZAP daemon answers.

ZAP runs only where a daemon is reachable at env ``ZAP_API_URL`` (the CI ZAP
job); elsewhere the stage says "ZAP: not run" in its notes and metadata,
never that ZAP found nothing, and with ``zap_required=true`` that is an
error. The ZAP API client (``zapv2``) lives in the scan environment only, so
:mod:`secgate.stages.dast.zap_driver` runs there as a script and this module
reads the alerts JSON it writes. The auth header's value reaches the driver
through its environment, ZAP through a replacer rule the driver removes
afterwards; it is redacted from the files kept in the report.

ZAP itself does not verify the target's certificate (it is an intercepting
proxy); that is why ZAP only ever gets the validated loopback target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secgate.model import Confidence, Finding, ScanContext, ScanOutput, Severity, fingerprint
from secgate.stages.dast import zap_driver
from secgate.stages.dast.target import STAGE, Target
from secgate.stages.dast.wapiti import redact, redact_file
from secgate.tools import ToolFailed, ToolMissing, failure_summary, run_tool


def scan(ctx: ScanContext, target: Target, out: Path) -> ScanOutput:
    """Run :mod:`zap_driver` under the scan venv's Python against ``target``."""
    api_url = os.environ.get("ZAP_API_URL", "")
    required = ctx.options.get("zap_required", "false") == "true"
    if not api_url:
        return not_run("ZAP_API_URL unset", required)
    alerts, xml = out / "zap-alerts.json", out / "zap-report.xml"
    args = [
        str(Path(zap_driver.__file__).resolve()), "--api-url", api_url,
        "--target", target.base_url, "--alerts", str(alerts), "--xml-report", str(xml),
        "--minutes", ctx.options.get("zap_minutes", "10"),
    ]  # fmt: skip
    env, secret = {}, target.auth[1] if target.auth else ""
    if target.auth:
        args += ["--auth-header-name", target.auth[0]]
        env[zap_driver.AUTH_ENV] = target.auth[1]
    timeout = int(float(ctx.options.get("zap_minutes", "10")) * 60) + 120
    ok_codes = (0, zap_driver.EXIT_UNREACHABLE)
    try:
        done = run_tool(ctx, "python", args, ok_codes=ok_codes, env=env, timeout=timeout)
    except (ToolMissing, ToolFailed) as exc:
        return ScanOutput(errors=[redact(f"ZAP scan failed: {failure_summary(exc)}", secret)])
    finally:
        for kept in (alerts, xml):
            redact_file(kept, secret)
    if done.returncode == zap_driver.EXIT_UNREACHABLE:
        return not_run(f"no ZAP daemon at ZAP_API_URL={api_url}", required)
    try:
        document = json.loads(alerts.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return ScanOutput(errors=[f"ZAP wrote no readable alerts: {exc}"])
    count = len(document.get("alerts") or [])
    authenticated = "yes" if target.auth else "no"
    summary = (
        f"ran against {target.base_url} from its OpenAPI document ({count} alerts), "
        f"authenticated: {authenticated}"
    )
    return ScanOutput(
        findings=parse_zap(document),
        tool_versions={"zap": str(document.get("zap_version", "unknown"))},
        artifacts=[alerts, xml],
        metadata={"zap": summary},
    )


def not_run(reason: str, required: bool) -> ScanOutput:
    """ZAP did not run: always said in notes and metadata; an error when ZAP is required."""
    message = f"ZAP: not run ({reason})"
    return ScanOutput(
        notes=[message], metadata={"zap": message}, errors=[message] if required else []
    )


def parse_zap(document: dict[str, Any]) -> list[Finding]:
    """Findings from ZAP's ``core/view/alerts``; alerts users marked false positive are dropped."""
    findings: list[Finding] = []
    for alert in document.get("alerts") or []:
        confidence_word = str(alert.get("confidence", "Medium"))
        if confidence_word == "False Positive":
            continue
        confidence = (
            Confidence.HIGH if confidence_word == "Confirmed" else Confidence.parse(confidence_word)
        )
        cwe = (
            f"CWE-{alert['cweid']}"
            if str(alert.get("cweid", "-1")) not in ("", "-1", "0")
            else None
        )
        name, method, url = (
            str(alert.get("alert")),
            str(alert.get("method", "GET")),
            str(alert.get("url")),
        )
        findings.append(
            Finding(
                stage=STAGE,
                tool="zap",
                rule_id=f"zap/{alert.get('pluginId')}",
                severity=Severity.parse(str(alert.get("risk", "Medium"))),
                confidence=confidence,
                message=f"{name}: {alert.get('param', '')} {alert.get('evidence', '')}".strip(),
                location=f"{method} {url}",
                fingerprint=fingerprint(
                    STAGE,
                    "zap",
                    str(alert.get("pluginId")),
                    method,
                    urlsplit(url).path,
                    str(alert.get("param", "")),
                ),
                help=" ".join(str(alert.get("solution", "")).split())[:300],
                cwe=cwe,
            )
        )
    return findings

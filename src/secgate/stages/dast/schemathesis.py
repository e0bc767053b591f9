"""schemathesis: fuzz every operation of ``<base_url>/openapi.json`` with all its checks.

5xx, schema and status-code conformance, negative data, ignored auth,
undocumented methods...: each distinct failure becomes one finding, told apart
by check, operation, status and a normalised signature of what was wrong (the
failure's message, else the response body), so two different 500s on one
operation are two findings and one waiver never hides both. Every response
schemathesis recorded also goes through the passive checks (:mod:`.passive`).
The run is seeded and time-bounded; the auth header's value reaches
schemathesis through the environment, never its command line or a file.

The event stream (``--report ndjson``: every request and response) is read
from a private temporary directory and deleted: responses may hold secrets
the fuzzer minted (``POST /api/v1/tokens`` answers with a new token).
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secgate.model import Confidence, Finding, ScanContext, ScanOutput, Severity, fingerprint
from secgate.stages.dast import passive
from secgate.stages.dast.client import (
    Answer,
    TargetUnreachable,
    openapi,
    operation_of,
    operations,
    route_of,
)
from secgate.stages.dast.target import STAGE, Target
from secgate.taxonomy import AUTHENTICATION_FAILURES, BROKEN_ACCESS_CONTROL, INJECTION
from secgate.tools import ToolFailed, ToolMissing, failure_summary, run_tool, tool_version

AUTH_ENV = "SECGATE_DAST_AUTH_VALUE"
# schemathesis failure type -> (OWASP, CWE) where the mapping is clear.
TAXONOMY: dict[str, tuple[str | None, str | None]] = {
    "ServerError": (None, "CWE-755"),
    "IgnoredAuth": (AUTHENTICATION_FAILURES, "CWE-287"),
    "UseAfterFree": (BROKEN_ACCESS_CONTROL, "CWE-416"),
    "AcceptedNegativeData": (INJECTION, "CWE-20"),
}


# schemathesis keeps one server error per operation (same check, same status): secgate
# reads every 5xx response itself, so two different crashes are two findings.
SERVER_ERROR_CHECK = "not_a_server_error"
# What changes between two runs of the same failure: ids, timestamps, numbers.
VOLATILE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[0-9a-fA-F]{16,}\b|\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?|\d+"
)


@dataclass(frozen=True)
class Failure:
    """One failed check on one recorded response."""

    check: str  # schemathesis check name, e.g. "not_a_server_error"
    code: str  # e.g. "ST101"
    kind: str  # failure type, e.g. "ServerError"
    title: str
    severity: str
    operation: str  # "GET /api/v1/events/{event_id}"
    status: int | None  # the response's status, when one was recorded
    signature: str  # normalised message, else normalised response body


@dataclass
class Recording:
    """What the event stream says: failures, and every (operation, response) seen."""

    failures: list[Failure] = field(default_factory=list)
    answers: list[tuple[str, Answer]] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)  # documented operations with a response


def scan(ctx: ScanContext, target: Target, out: Path) -> ScanOutput:
    """Run schemathesis against ``target``; its event stream gives the findings."""
    with tempfile.TemporaryDirectory(prefix="secgate-schemathesis-") as private:
        events = Path(private) / "events.ndjson"
        return _scan(ctx, target, out, events)


def _arguments(ctx: ScanContext, target: Target, out: Path, events: Path) -> list[str]:
    """schemathesis' command line: all checks, seeded, bounded, verified TLS, four reports."""
    opts = ctx.options
    return [
        "--config-file",
        str(_config_file(out, target.auth, ctx.security_dir / "schemathesis.toml")),
        "--no-color",
        "run", f"{target.base_url}/openapi.json", "--url", target.base_url,
        "--checks", "all", "--seed", opts.get("seed", "1"),
        "--max-examples", opts.get("max_examples", "50"), "--max-time", opts.get("max_time", "120"),
        "--phases", opts.get("phases", "examples,coverage,fuzzing,stateful"),
        "--request-timeout", opts.get("request_timeout", "10"), "--workers", "1",
        "--generation-database", "none",
        "--tls-verify", target.ca_file, "--max-redirects", "0",
        "--report", "junit,json,ndjson",
        "--report-json-path", str(out / "schemathesis.json"),
        "--report-junit-path", str(out / "schemathesis-junit.xml"),
        "--report-ndjson-path", str(events),
    ]  # fmt: skip


def _scan(ctx: ScanContext, target: Target, out: Path, events: Path) -> ScanOutput:
    """:func:`scan` with the event stream written to ``events`` (a private file)."""
    base_url, auth = target.base_url, target.auth
    report = out / "schemathesis.json"
    junit = out / "schemathesis-junit.xml"
    opts = ctx.options
    args = _arguments(ctx, target, out, events)
    try:
        documented = operations(openapi(target))  # to count what the run reached
    except TargetUnreachable as exc:
        return ScanOutput(errors=[f"schemathesis not run: cannot read the OpenAPI document: {exc}"])
    env = {AUTH_ENV: auth[1]} if auth else {}
    timeout = int(opts.get("max_time", "120")) + 120
    try:
        done = run_tool(ctx, "schemathesis", args, ok_codes=(0, 1), env=env, timeout=timeout)
    except (ToolMissing, ToolFailed) as exc:
        return ScanOutput(errors=[f"schemathesis could not run: {failure_summary(exc)}"])
    log_file = out / "schemathesis.log"
    log_file.write_text(done.stdout + done.stderr, encoding="utf-8")
    versions = {"schemathesis": tool_version(ctx, "schemathesis")}
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = f"schemathesis exited {done.returncode} without a readable report: {exc}"
        return ScanOutput(tool_versions=versions, errors=[reason])
    artifacts = [report, junit, log_file]
    try:
        lines = events.read_text(encoding="utf-8").splitlines()
        recording = read_events(lines, base_url, documented)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = f"schemathesis exited {done.returncode} without a readable event stream: {exc}"
        return ScanOutput(tool_versions=versions, artifacts=artifacts, errors=[reason])
    findings = failure_findings(recording.failures, base_url)
    problem = _unfinished(document, done.returncode, findings, base_url)
    if problem is None and not recording.reached:
        problem = f"schemathesis ineffective: no response from any operation of {base_url}"
    if problem is not None:
        return ScanOutput(tool_versions=versions, artifacts=artifacts, errors=[problem])
    findings += passive.findings(recording.answers, base_url, "schemathesis")
    summary = f"{coverage(recording, len(documented), auth is not None)}, {_run_summary(document)}"
    warnings = [
        f"schemathesis warning {kind}: {items}"
        for kind, items in (document.get("warnings") or {}).items()
        if items
    ]
    return ScanOutput(
        findings=findings,
        tool_versions={**versions, passive.TOOL: "built-in"},
        artifacts=artifacts,
        notes=warnings,
        metadata={"schemathesis": summary},
    )


def _run_summary(document: dict[str, Any]) -> str:
    cases = (document.get("test_cases") or {}).get("generated")
    return f"{cases} cases, seed {document.get('seed')}, stop: {document.get('stop_reason')}"


def coverage(recording: Recording, total: int, authenticated: bool) -> str:
    """Operations reached (of ``total`` documented), requests sent, authenticated or not."""
    unauthorised = sum(1 for _, answer in recording.answers if answer.status == 401)
    auth = (
        f"authenticated: yes ({unauthorised} of {len(recording.answers)} answered 401)"
        if authenticated
        else "authenticated: no"
    )
    reached = len(recording.reached)
    return f"{reached} of {total} operations reached, {len(recording.answers)} requests, {auth}"


def _unfinished(
    document: dict[str, Any], returncode: int, findings: list[Finding], base_url: str
) -> str | None:
    """Why a report that parsed still does not show a finished run, if it does not."""
    if document.get("errors"):
        return f"schemathesis hit errors (not failures): {json.dumps(document['errors'])[:500]}"
    if not (document.get("operations") or {}).get("tested"):
        return f"schemathesis tested no operation of {base_url}/openapi.json"
    if returncode == 1 and not findings:
        return "schemathesis exited 1 but its report lists no failure"
    return None


def _config_file(
    out: Path, auth: tuple[str, str] | None, project_config: Path | None = None
) -> Path:
    """A config file for the auth header: its value reaches schemathesis via env, not argv.

    The project's own ``security/schemathesis.toml`` (per-operation
    expectations, each with its reason) is appended when it exists.
    """
    config = out / "schemathesis.toml"
    cache = json.dumps(str(out / "schemathesis-cache"))  # a TOML basic string is a JSON string
    # The crash cache (for `st replay`) stays with this run's reports, not in the cwd.
    lines = ["# written by secgate's DAST stage", "[cache]", f"directory = {cache}"]
    if auth:
        lines += ["[headers]", f'"{auth[0]}" = "${{{AUTH_ENV}}}"']
    if project_config is not None and project_config.is_file():
        lines += [f"# from {project_config.name}", project_config.read_text(encoding="utf-8")]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def signature(text: str) -> str:
    """``text`` without what varies between runs of the same failure (ids, times, numbers)."""
    return " ".join(VOLATILE.sub("#", text).split())[:300]


def _body(response: dict[str, Any]) -> bytes:
    content = response.get("content") or {}
    if "$base64" in content:
        return base64.b64decode(content["$base64"])
    return str(content.get("string", "")).encode("utf-8")


def _answer(interaction: dict[str, Any]) -> Answer | None:
    """A recorded request/response as the passive checks see it (None: no response)."""
    request, response = interaction.get("request") or {}, interaction.get("response")
    if not response:
        return None
    headers = {
        str(name).lower(): ", ".join(values) if isinstance(values, list) else str(values)
        for name, values in (response.get("headers") or {}).items()
    }
    sent = {str(name).lower() for name in (request.get("headers") or {})}
    return Answer(
        method=str(request.get("method", "GET")),
        path=str(request.get("uri", "")),
        status=int(response["status_code"]),
        headers=headers,
        body=_body(response),
        authenticated="authorization" in sent,
    )


def _scenarios(lines: list[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        event = json.loads(line) if line.strip() else {}
        if "ScenarioFinished" in event:
            yield event["ScenarioFinished"].get("recorder") or {}


def read_events(lines: list[str], base_url: str, documented: list[str]) -> Recording:
    """Failures and responses from schemathesis' ndjson event stream (``--report ndjson``).

    Each response is filed under the documented operation it answered (the
    stateful phase's scenarios span several), an undocumented method under
    its documented path.
    """
    recording = Recording()
    prefix = urlsplit(base_url).path
    for recorder in _scenarios(lines):
        label = str(recorder.get("label", ""))
        answers: dict[str, Answer] = {}
        for case_id, interaction in (recorder.get("interactions") or {}).items():
            answer = _answer(interaction)
            if answer is None:
                continue
            answers[case_id] = answer
            path = urlsplit(answer.path).path.removeprefix(prefix)
            operation = operation_of(answer.method, path, documented)
            if operation is not None:
                recording.reached.add(operation)
            sent = route_of(answer.method, path, documented)
            recording.answers.append((sent, answer))
            if answer.status >= 500:
                recording.failures.append(_server_error(sent, answer))
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if check.get("status") != "failure" or check.get("name") == SERVER_ERROR_CHECK:
                    continue
                recording.failures.append(_failure(check, label, answers.get(case_id)))
    return recording


def _server_error(operation: str, answer: Answer) -> Failure:
    """Every 5xx response, told apart by its body: schemathesis reports one per operation."""
    return Failure(
        check=SERVER_ERROR_CHECK,
        code="ST101",
        kind="ServerError",
        title="Server error",
        severity="critical",
        operation=operation,
        status=answer.status,
        signature=signature(answer.body.decode("utf-8", errors="replace")),
    )


def _failure(check: dict[str, Any], label: str, answer: Answer | None) -> Failure:
    failure = (check.get("failure_info") or {}).get("failure") or {}
    message = str(failure.get("message") or "")
    body = answer.body.decode("utf-8", errors="replace") if answer else ""
    return Failure(
        check=str(check.get("name", "")),
        code=str(failure.get("code", "")),
        kind=str(failure.get("type", "")),
        title=str(failure.get("title", "")),
        severity=str(failure.get("severity", "high")),
        operation=str(failure.get("operation") or label),
        status=answer.status if answer else None,
        signature=signature(message or body),
    )


def failure_findings(failures: list[Failure], base_url: str) -> list[Finding]:
    """One finding per distinct failure: (check, code, operation, status, signature)."""
    grouped: dict[tuple[str, str, str, str, str], list[Failure]] = {}
    for failure in failures:
        key = (failure.check, failure.code, failure.operation, str(failure.status),
               failure.signature)  # fmt: skip
        grouped.setdefault(key, []).append(failure)
    findings: list[Finding] = []
    for key, same in grouped.items():
        first = same[0]
        owasp, cwe = TAXONOMY.get(first.kind, (None, None))
        method, _, path = first.operation.partition(" ")
        detail = f": {first.signature[:200]}" if first.signature else ""
        findings.append(
            Finding(
                stage=STAGE,
                tool="schemathesis",
                rule_id=f"schemathesis/{first.code}",
                severity=Severity.parse(first.severity),
                confidence=Confidence.HIGH,  # schemathesis reproduced it with a real request
                message=(
                    f"{first.title} ({len(same)} case(s)) in {first.operation}, "
                    f"status {first.status}{detail}"
                ),
                location=f"{method} {base_url}{path}",
                fingerprint=fingerprint(STAGE, "schemathesis", *key),
                help=f"schemathesis explain {first.code}; reproductions in dast/schemathesis.log",
                owasp=owasp,
                cwe=cwe,
            )
        )
    return findings

"""Config stage: CI workflows, Dependabot config and the Dockerfile.

* zizmor audits GitHub workflows offline (unpinned actions, template injection,
  ``pull_request_target``, excessive permissions, credential persistence);
* check-jsonschema validates workflows and dependabot.yml against the schemas
  vendored in its wheel (a typo in a workflow otherwise fails only on GitHub);
* hadolint lints the Dockerfile when there is one; the image itself is not built
  here (the note says so), CI's image workflow builds and scans it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from secgate.model import (
    Confidence,
    Finding,
    ScanContext,
    ScanOutput,
    Severity,
    combine,
    fingerprint,
)
from secgate.source import code_fingerprint, read_lines, unique_fingerprints
from secgate.tools import installed_version, run_tool, tool_version

STAGE = "config"
WORKFLOW_GLOBS = ("*.yml", "*.yaml")
OWASP_CONFIG = "A05:2021-Security Misconfiguration"
OWASP_SUPPLY_CHAIN = "A08:2021-Software and Data Integrity Failures"
# secgate never needs a container engine: it lints the Dockerfile; CI builds the image.
IMAGE_NOTE = (
    "image: not built (secgate lints the Dockerfile only; "
    ".github/workflows/image.yml builds, runs and scans the image)"
)
HADOLINT_LEVELS = {"error": "high", "warning": "medium", "info": "low", "style": "info"}


def run(ctx: ScanContext) -> ScanOutput:
    """Run every config check that has something to look at; note the ones that do not.

    A tool that fails raises (ToolMissing/ToolFailed): the stage did not run.
    """
    workflows = workflow_files(ctx.root)
    dependabot = ctx.root / ".github" / "dependabot.yml"
    schema_checks = [("vendor.github-workflows", workflows)] if workflows else []
    if dependabot.is_file():
        schema_checks.append(("vendor.dependabot", [dependabot]))
    outputs = []
    if workflows or dependabot.is_file():
        outputs.append(run_zizmor(ctx))
    else:
        outputs.append(ScanOutput(notes=["no .github/workflows or dependabot.yml: zizmor not run"]))
    outputs += [run_schema_check(ctx, schema, files) for schema, files in schema_checks]
    if schema_checks:
        outputs.append(
            ScanOutput(tool_versions={"check-jsonschema": check_jsonschema_version(ctx)})
        )
    dockerfile = ctx.root / "Dockerfile"
    if dockerfile.is_file():
        outputs.append(run_hadolint(ctx, dockerfile))
        outputs.append(ScanOutput(notes=[IMAGE_NOTE]))
    else:
        outputs.append(ScanOutput(notes=["no Dockerfile: hadolint not run"]))
    output = combine(outputs)
    return dataclasses.replace(output, findings=unique_fingerprints(output.findings))


def workflow_files(root: Path) -> list[Path]:
    directory = root / ".github" / "workflows"
    return sorted(p for pattern in WORKFLOW_GLOBS for p in directory.glob(pattern))


def _relative(ctx: ScanContext, path: Path) -> str:
    return path.relative_to(ctx.root).as_posix()


# --- zizmor -----------------------------------------------------------------


def run_zizmor(ctx: ScanContext) -> ScanOutput:
    """zizmor --offline on the repository → zizmor.json + zizmor.sarif."""
    json_out = ctx.report_dir / "zizmor.json"
    sarif_out = ctx.report_dir / "zizmor.sarif"
    # zizmor's exit codes encode the worst severity; the gate decides, so ask for 0.
    # --no-ignores: in-file suppressions have no owner or expiry; waivers.yml does.
    common = ["--offline", "--no-ignores", "--no-exit-codes", "--no-progress", "--color=never"]
    for fmt, out in (("json", json_out), ("sarif", sarif_out)):
        done = run_tool(ctx, "zizmor", [*common, "--format", fmt, "."])
        out.write_text(done.stdout, encoding="utf-8")
    report = json.loads(json_out.read_text(encoding="utf-8"))
    return ScanOutput(
        findings=[zizmor_finding(ctx, item) for item in report],
        tool_versions={"zizmor": tool_version(ctx, "zizmor").removeprefix("zizmor ").strip()},
        artifacts=[json_out, sarif_out],
    )


def zizmor_finding(ctx: ScanContext, item: dict[str, Any]) -> Finding:
    """One zizmor finding → Finding, located at its primary location."""
    locations = item.get("locations") or [{}]
    primary = next(
        (loc for loc in locations if loc.get("symbolic", {}).get("kind") == "Primary"),
        locations[0],
    )
    symbolic = primary.get("symbolic", {})
    key = symbolic.get("key", {})
    path = str((key.get("Local") or {}).get("verbatim_path", "?")).removeprefix("./")
    concrete = primary.get("concrete", {})
    line = int(concrete.get("location", {}).get("start_point", {}).get("row", 0)) + 1
    feature = str(concrete.get("feature", ""))
    rule_id = str(item["ident"])
    determinations = item.get("determinations", {})
    annotation = str(symbolic.get("annotation", ""))
    return Finding(
        stage=STAGE,
        tool="zizmor",
        rule_id=rule_id,
        severity=_severity(determinations.get("severity")),
        confidence=_confidence(determinations.get("confidence")),
        message=f"{item.get('desc', rule_id)}: {annotation}" if annotation else str(item["desc"]),
        location=f"{path}:{line}",
        fingerprint=code_fingerprint("zizmor", rule_id, path, feature + annotation),
        help=f"See {item.get('url', 'https://docs.zizmor.sh/audits/')} for the fix.",
        owasp=OWASP_SUPPLY_CHAIN
        if rule_id in {"unpinned-uses", "cache-poisoning"}
        else OWASP_CONFIG,
        cwe="CWE-829" if rule_id == "unpinned-uses" else None,
        path=path,
        line=line,
    )


def _severity(word: object) -> Severity:
    """zizmor can also say "Unknown": that must not crash the stage, nor hide the finding."""
    try:
        return Severity.parse(str(word))
    except KeyError:
        return Severity.MEDIUM


def _confidence(word: object) -> Confidence:
    try:
        return Confidence.parse(str(word))
    except KeyError:
        return Confidence.MEDIUM


# --- check-jsonschema -------------------------------------------------------


def run_schema_check(ctx: ScanContext, schema: str, files: list[Path]) -> ScanOutput:
    """Validate files against a schema vendored in check-jsonschema (works offline)."""
    name = schema.removeprefix("vendor.")
    out = ctx.report_dir / f"check-jsonschema-{name}.json"
    relative = [_relative(ctx, f) for f in files]
    done = run_tool(
        ctx,
        "check-jsonschema",
        ["--builtin-schema", schema, "-o", "json", *relative],
        ok_codes=(0, 1),
    )
    out.write_text(done.stdout, encoding="utf-8")
    report = json.loads(done.stdout)
    errors = [*report.get("errors", []), *report.get("parse_errors", [])]
    return ScanOutput(findings=[schema_finding(name, error) for error in errors], artifacts=[out])


def check_jsonschema_version(ctx: ScanContext) -> str:
    """ "0.38.1" (the fallback's "check-jsonschema, version 0.38.1" -> "0.38.1")."""
    return installed_version(ctx, "check-jsonschema", "check-jsonschema").rsplit(" ", 1)[-1]


def schema_finding(schema: str, error: dict[str, Any]) -> Finding:
    """A schema violation: the file would be rejected or misread by GitHub."""
    path = str(error.get("filename", "?")).removeprefix("./")
    where = str(error.get("path", "$"))
    best = error.get("best_deep_match") or error.get("best_match") or {}
    message = str(best.get("message") or error.get("message", "invalid"))
    rule_id = f"{schema}-schema"
    return Finding(
        stage=STAGE,
        tool="check-jsonschema",
        rule_id=rule_id,
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        message=f"{where}: {message}",
        location=f"{path} ({best.get('path', where)})",
        fingerprint=fingerprint("check-jsonschema", rule_id, path, where, message),
        help=f"Fix the {schema} file so it matches the schema GitHub uses.",
        owasp=OWASP_CONFIG,
        path=path,
    )


# --- hadolint ---------------------------------------------------------------


def run_hadolint(ctx: ScanContext, dockerfile: Path) -> ScanOutput:
    """hadolint → hadolint.json + hadolint.sarif."""
    relative = _relative(ctx, dockerfile)
    json_out = ctx.report_dir / "hadolint.json"
    sarif_out = ctx.report_dir / "hadolint.sarif"
    for fmt, out in (("json", json_out), ("sarif", sarif_out)):
        done = run_tool(ctx, "hadolint", ["--no-fail", "-f", fmt, relative], ok_codes=(0, 1))
        out.write_text(done.stdout, encoding="utf-8")
    report = json.loads(json_out.read_text(encoding="utf-8"))
    return ScanOutput(
        findings=[hadolint_finding(ctx, item) for item in report],
        tool_versions={"hadolint": tool_version(ctx, "hadolint")},
        artifacts=[json_out, sarif_out],
    )


def hadolint_finding(ctx: ScanContext, item: dict[str, Any]) -> Finding:
    path = str(item.get("file", "Dockerfile"))
    line = int(item.get("line", 0)) or None
    rule_id = str(item["code"])
    code = read_lines(ctx.root, path, line, line) if line else ""
    return Finding(
        stage=STAGE,
        tool="hadolint",
        rule_id=rule_id,
        severity=Severity.parse(HADOLINT_LEVELS.get(str(item.get("level")), "medium")),
        confidence=Confidence.HIGH,
        message=str(item.get("message", "")),
        location=f"{path}:{line}" if line else path,
        fingerprint=code_fingerprint("hadolint", rule_id, path, code),
        help=f"See https://github.com/hadolint/hadolint/wiki/{rule_id}",
        owasp=OWASP_CONFIG,
        path=path,
        line=line,
    )

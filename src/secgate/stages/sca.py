"""SCA stage: known vulnerabilities, SBOM and licences of the locked runtime dependencies.

What is audited is the lock file (``requirements/runtime.txt``, hash-pinned), not
whatever happens to be installed: that is what ships.

Options (``ctx.options``):

- ``sca_source``: ``"offline"`` (the advisory database only, :mod:`secgate.osv`) or
  ``"both"`` (the advisory database, and ``pip-audit --strict`` against the live
  PyPI service; findings merged by alias, :mod:`secgate.vulnmerge`). Default:
  offline when a local copy is named (air-gapped), else both.
- ``advisory_db``: a local PyPA-layout database directory; else env
  ``SECGATE_ADVISORY_DB``; else the cache ``secgate advisories`` fills. Nothing
  else is looked at (:mod:`secgate.advisories`); relative paths are relative to
  ``ctx.root``. Which copy, its date and its age go into the stage's metadata;
  the gate fails data older than the policy allows.
- ``lock_file``: default ``requirements/runtime.txt`` (relative to ``ctx.root``).
- ``license_venv``: environment whose metadata gives the licences, default ``<root>/.venv``.

Outputs in ``<report_dir>/sca/``: ``advisory-db.json`` (the advisory database's
matches in pip-audit's JSON format, so DefectDojo imports it), ``pip-audit.json``
(pip-audit's own, with ``both``), ``sbom.cdx.json`` (CycloneDX 1.6, the
project from ``pyproject.toml`` as root component, each package's licence, checked
against the official schema) and ``licenses.json``. Any step that cannot run makes
the stage not ran: an unaudited dependency is never reported as "no known
vulnerabilities".
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from secgate import advisories, licenses, osv
from secgate.model import (
    Confidence,
    Finding,
    ScanContext,
    ScanOutput,
    Severity,
    StageResult,
    fingerprint,
)
from secgate.tools import ToolFailed, ToolMissing, installed_version, run_tool, tool_version
from secgate.vulnmerge import Reported, merge

log = logging.getLogger(__name__)

STAGE = "sca"
OWASP = "A06:2021-Vulnerable and Outdated Components"
DEFAULT_LOCK_FILE = "requirements/runtime.txt"
# An advisory without a usable severity is still a known vulnerability: high, not "unknown".
DEFAULT_SEVERITY = Severity.HIGH
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


class LockFileError(Exception):
    """The lock file is missing or holds a requirement that is not an exact pin."""


def read_lock(path: Path) -> dict[str, str]:
    """``name -> version`` for every ``name==version`` line (PEP 503 names).

    Comment, option and ``--hash`` continuation lines are skipped; anything else
    that is not an exact pin is an error, because it cannot be audited.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LockFileError(f"cannot read lock file {path}: {exc}") from exc
    pins: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        if not text or text.startswith(("#", "-")):
            continue
        match = _PIN.match(text)
        if match is None:
            raise LockFileError(f"{path}: not an exact pin: {text}")
        pins[canonicalize_name(match.group(1))] = match.group(2)
    if not pins:
        raise LockFileError(f"{path}: no pinned requirements")
    return pins


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


# --- vulnerabilities --------------------------------------------------------


def _vuln_finding(
    tool: str,
    package: str,
    version: str,
    vuln_id: str,
    aliases: list[str],
    text: str,
    fixes: list[str],
    rating: osv.Rated,
    lock_rel: str,
) -> Finding:
    """One finding per (package, advisory); the fingerprint ignores the version and source.

    Without a usable severity (no CVSS vector, none readable, no database
    severity: pip-audit's JSON carries none) the advisory counts as high, and
    the message says so rather than pretending it was scored.
    """
    help_text = (
        f"upgrade {package} to >= {fixes[0]}"
        if fixes
        else f"no fixed release of {package} is known: remove or replace it, or waive with a reason"
    )
    alias_text = f" ({', '.join(aliases)})" if aliases else ""
    first_line = text.strip().splitlines()[0] if text.strip() else "known vulnerability"
    rated = rating.source or f"none known, {DEFAULT_SEVERITY.name.lower()} by default"
    return Finding(
        stage=STAGE,
        tool=tool,
        rule_id=vuln_id,
        severity=DEFAULT_SEVERITY if rating.severity is None else rating.severity,
        confidence=Confidence.HIGH,
        message=f"{package} {version} is affected by {vuln_id}{alias_text}: {first_line} "
        f"[severity: {rated}]",
        location=f"{lock_rel}: {package}=={version}",
        fingerprint=fingerprint(STAGE, vuln_id, package),
        help=help_text,
        owasp=OWASP,
        path=lock_rel,
    )


def pip_audit_document(pins: Mapping[str, str], matches: list[osv.Match]) -> dict[str, Any]:
    """The offline result in pip-audit's ``--format json`` shape (DefectDojo's importer)."""
    by_package: dict[str, list[dict[str, Any]]] = {name: [] for name in pins}
    for match in matches:
        advisory = match.advisory
        by_package[match.package].append(
            {
                "id": advisory.id,
                "fix_versions": list(match.fix_versions),
                "aliases": list(advisory.aliases),
                "description": advisory.details or advisory.summary,
            }
        )
    dependencies = [
        {"name": name, "version": pins[name], "vulns": vulns}
        for name, vulns in sorted(by_package.items())
    ]
    return {"dependencies": dependencies, "fixes": []}


def _audit_offline(
    ctx: ScanContext,
    pins: dict[str, str],
    lock_rel: str,
    out: Path,
    result: StageResult,
    reported: list[Reported],
) -> str | None:
    try:
        data = advisories.locate(ctx.options.get("advisory_db"), ctx.root, os.environ)
        db = osv.AdvisoryDb(data.path)
        applicable, withdrawn = osv.audit(db, pins)
    except (advisories.AdvisoryDataError, osv.AdvisoryDbError) as exc:
        return str(exc)
    result.metadata.update(data.metadata())
    result.metadata.update(
        {
            "advisory_count": str(db.advisory_count),
            "withdrawn_not_applicable": ", ".join(
                f"{m.advisory.id} ({m.package})" for m in withdrawn
            ),
        }
    )
    result.tool_versions["osv-offline"] = f"PyPA advisory database {data.data_date or 'undated'}"
    for match in withdrawn:
        result.notes.append(
            f"{match.advisory.id} ({match.package} {match.version}) not applicable: "
            f"withdrawn {match.advisory.withdrawn}"
        )
    for match in applicable:
        adv = match.advisory
        finding = _vuln_finding(
            "osv-offline",
            match.package,
            match.version,
            adv.id,
            list(adv.aliases),
            adv.summary or adv.details,
            list(match.fix_versions),
            adv.rating,
            lock_rel,
        )
        if adv.rating.note:
            result.notes.append(f"{adv.id} ({match.package}): {adv.rating.note}")
        reported.append(Reported(finding, match.package, frozenset({adv.id, *adv.aliases})))
    report = out / "advisory-db.json"
    report.write_text(
        json.dumps(pip_audit_document(pins, applicable), indent=2) + "\n", encoding="utf-8"
    )
    result.artifacts.append(report)
    return None


def _audit_pip_audit(
    ctx: ScanContext,
    lock: Path,
    lock_rel: str,
    out: Path,
    result: StageResult,
    reported: list[Reported],
) -> str | None:
    """pip-audit against the online services; --strict so an unaudited dependency fails."""
    report = out / "pip-audit.json"
    args = [
        "--strict", "--require-hashes", "--disable-pip", "-r", str(lock),
        "--format", "json", "--output", str(report), "--progress-spinner", "off",
    ]  # fmt: skip
    try:
        # Exit 1 is "vulnerabilities found" and also "could not audit"; the report tells which.
        done = run_tool(ctx, "pip-audit", args, ok_codes=(0, 1))
    except (ToolMissing, ToolFailed) as exc:
        return f"pip-audit could not run: {exc}"
    result.tool_versions["pip-audit"] = tool_version(ctx, "pip-audit")
    result.metadata["pip_audit_source"] = "pip-audit --strict (PyPI vulnerability service, live)"
    if not report.is_file():
        return f"pip-audit exited {done.returncode} without a report: {_tail(done.stderr)}"
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
        dependencies = document["dependencies"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable pip-audit report {report}: {exc}"
    result.artifacts.append(report)
    skipped = [f"{d.get('name')}: {d['skip_reason']}" for d in dependencies if d.get("skip_reason")]
    if skipped:
        return "pip-audit could not audit " + "; ".join(skipped)
    for dep in dependencies:
        for vuln in dep.get("vulns") or []:
            aliases = [str(a) for a in vuln.get("aliases") or []]
            finding = _vuln_finding(
                "pip-audit",
                str(dep["name"]),
                str(dep["version"]),
                str(vuln["id"]),
                aliases,
                str(vuln.get("description") or ""),
                [str(v) for v in vuln.get("fix_versions") or []],
                osv.Rated(None, ""),
                lock_rel,
            )
            package = canonicalize_name(str(dep["name"]))
            reported.append(Reported(finding, package, frozenset({str(vuln["id"]), *aliases})))
    if done.returncode == 1 and not any(r.finding.tool == "pip-audit" for r in reported):
        return f"pip-audit exited {done.returncode}: {_tail(done.stderr)}"
    return None


# --- SBOM -------------------------------------------------------------------


SBOM_SPEC_VERSION = "1.6"  # pinned: a cyclonedx-py upgrade must not change what we publish

# The official CycloneDX JSON schema, as cyclonedx-python-lib ships and applies it. It runs
# in the scan venv (where the library is), after secgate has added the licences.
_VALIDATE_SBOM = """\
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
validator = JsonStrictValidator(SchemaVersion.from_version(sys.argv[2]))
with open(sys.argv[1], encoding="utf-8") as sbom:
    errors = list(validator.validate_str(sbom.read(), all_errors=True) or ())
for error in errors[:5]:
    sys.stdout.write(f"{error}\\n")
sys.exit(1 if errors else 0)
"""


def schema_problems(ctx: ScanContext, sbom: Path) -> list[str]:
    """What the official CycloneDX JSON schema rejects in ``sbom`` ([] when it is valid)."""
    args = ["-c", _VALIDATE_SBOM, str(sbom), SBOM_SPEC_VERSION]
    checked = run_tool(ctx, "python", args, ok_codes=(0, 1))
    if checked.returncode == 0:
        return []
    return [f"SBOM fails the CycloneDX {SBOM_SPEC_VERSION} schema: {_tail(checked.stdout)}"]


def root_component(root: Path) -> tuple[str, str] | None:
    """(name, version) of the project from ``pyproject.toml``; None without one."""
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        return str(project["name"]), str(project["version"])
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return None


def check_sbom(
    document: Mapping[str, Any], pins: Mapping[str, str], root: tuple[str, str] | None = None
) -> list[str]:
    """Problems with a CycloneDX JSON SBOM: wrong format or version, no root, a package missing."""
    problems: list[str] = []
    if document.get("bomFormat") != "CycloneDX" or document.get("specVersion") != (
        SBOM_SPEC_VERSION
    ):
        problems.append(f"not a CycloneDX {SBOM_SPEC_VERSION} JSON document")
    if root is not None:
        component = (document.get("metadata") or {}).get("component") or {}
        found = (component.get("name"), component.get("version"))
        if found != root:
            problems.append(f"SBOM root component is {found}, expected {root} (pyproject.toml)")
    listed = set()
    for component in document.get("components") or []:
        purl = str(component.get("purl", ""))
        match = re.match(r"pkg:pypi/([^@]+)@([^?#]+)", purl)
        if match:
            listed.add((canonicalize_name(match.group(1)), match.group(2)))
    missing = sorted(f"{n}=={v}" for n, v in pins.items() if (n, v) not in listed)
    if missing:
        problems.append("SBOM lacks locked packages: " + ", ".join(missing))
    return problems


def licence_choice(verdict: licenses.LicenseVerdict) -> list[dict[str, Any]]:
    """A component's CycloneDX ``licenses``: what its metadata declares, as we read it.

    A parsed SPDX expression (allowed or not) goes in as it is; text we could
    not parse goes in as a name; nothing when the installed metadata is not the
    locked release's (we do not know that release's licence).
    """
    text = verdict.license
    if not text or verdict.status == "version-mismatch":
        return []
    if verdict.status == "unknown":
        return [{"license": {"name": text, "acknowledgement": "declared"}}]
    if " " not in text and not text.startswith("LicenseRef-"):
        return [{"license": {"id": text, "acknowledgement": "declared"}}]
    return [{"expression": text, "acknowledgement": "declared"}]


def add_licences(
    document: dict[str, Any], verdicts: list[licenses.LicenseVerdict]
) -> dict[str, Any]:
    """Put each locked package's licence on its component (cyclonedx-py reads no metadata)."""
    by_pin = {(canonicalize_name(v.package), v.version): v for v in verdicts}
    for component in document.get("components") or []:
        match = re.match(r"pkg:pypi/([^@]+)@([^?#]+)", str(component.get("purl", "")))
        verdict = by_pin.get((canonicalize_name(match.group(1)), match.group(2))) if match else None
        choice = licence_choice(verdict) if verdict is not None else []
        if choice:
            component["licenses"] = choice
    return document


def _sbom(
    ctx: ScanContext,
    lock: Path,
    pins: dict[str, str],
    verdicts: list[licenses.LicenseVerdict],
    out: Path,
    result: StageResult,
) -> str | None:
    """CycloneDX SBOM of the lock file with the project as root and the licences we read.

    cyclonedx-py writes it, secgate adds the licences, then the official schema
    (cyclonedx-python-lib) and our completeness check must both accept it.
    """
    sbom = out / "sbom.cdx.json"
    args = ["requirements", str(lock), "--sv", SBOM_SPEC_VERSION, "--output-format", "JSON"]
    root = root_component(ctx.root)
    if root is not None:
        args += ["--pyproject", str(ctx.root / "pyproject.toml"), "--mc-type", "application"]
    try:
        # --no-validate: the same schema check runs once, below, on the document we
        # publish (with the licences); cyclonedx-py's own check of its draft costs ~3 s.
        run_tool(ctx, "cyclonedx-py", [*args, "--output-file", str(sbom), "--no-validate"])
        if not sbom.is_file():
            return f"cyclonedx-py wrote no SBOM at {sbom}"
        document = add_licences(json.loads(sbom.read_text(encoding="utf-8")), verdicts)
        sbom.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        problems = schema_problems(ctx, sbom) + check_sbom(document, pins, root)
    except (ToolMissing, ToolFailed) as exc:
        return f"cyclonedx-py could not run: {exc}"
    except ValueError as exc:
        return f"unreadable SBOM {sbom}: {exc}"
    result.tool_versions["cyclonedx-py"] = installed_version(ctx, "cyclonedx-bom", "cyclonedx-py")
    if problems:
        return "; ".join(problems)
    result.artifacts.append(sbom)
    licensed = sum(1 for c in document.get("components") or [] if c.get("licenses"))
    result.metadata["sbom"] = (
        f"{sbom} (CycloneDX {SBOM_SPEC_VERSION} JSON, schema-valid, {len(pins)} components, "
        f"{licensed} with a licence)"
    )
    return None


# --- licences ---------------------------------------------------------------

_LICENSE_RULES = {
    "disallowed": (
        "license-disallowed",
        Severity.HIGH,
        "replace {pkg} or get its licence approved in security/licenses.yml",
    ),
    "unknown": (
        "license-unknown",
        Severity.MEDIUM,
        "read {pkg}'s LICENSE and add a reviewed alias to security/licenses.yml",
    ),
    "version-mismatch": (
        "license-unverified",
        Severity.MEDIUM,
        "install the locked requirements (pip-sync) and rerun",
    ),
}


def _licences(
    ctx: ScanContext,
    pins: dict[str, str],
    lock_rel: str,
    out: Path,
    result: StageResult,
    verdicts: list[licenses.LicenseVerdict],
) -> str | None:
    """Judge each locked package's licence; ``verdicts`` is filled for the SBOM."""
    venv = ctx.root / ctx.options.get("license_venv", ".venv")
    try:
        policy = licenses.load_policy(ctx.security_dir / "licenses.yml")
        verdicts.extend(licenses.check(pins, licenses.installed_distributions(venv), policy))
    except (OSError, ValueError) as exc:
        return f"licence check could not run: {exc}"
    for verdict in verdicts:
        if verdict.status == "allowed":
            continue
        rule_id, severity, help_text = _LICENSE_RULES[verdict.status]
        described = verdict.license or "no licence metadata"
        result.findings.append(
            Finding(
                stage=STAGE,
                tool="licenses",
                rule_id=rule_id,
                severity=severity,
                confidence=Confidence.HIGH,
                message=f"{verdict.package} {verdict.version}: licence {described} "
                f"({verdict.source}) is {verdict.status}"
                + (f" ({verdict.detail})" if verdict.detail else ""),
                location=f"{lock_rel}: {verdict.package}=={verdict.version}",
                fingerprint=fingerprint(STAGE, rule_id, verdict.package, verdict.license),
                help=help_text.format(pkg=verdict.package),
                path=lock_rel,
            )
        )
    report = out / "licenses.json"
    report.write_text(json.dumps([vars(v) for v in verdicts], indent=2) + "\n", encoding="utf-8")
    result.artifacts.append(report)
    result.metadata["licenses"] = ", ".join(
        f"{k}={v}" for k, v in sorted(licenses.summary(verdicts).items())
    )
    return None


# --- the stage --------------------------------------------------------------


def run(ctx: ScanContext) -> ScanOutput:
    """Audit the lock file; every sub-step that cannot run is listed in ``errors``.

    The helpers above still fill one StageResult, ``result`` here: it is this
    function's scratch record only, returned as a ScanOutput at the end.
    """
    result = StageResult(stage=STAGE, ran=True)
    lock = ctx.root / ctx.options.get("lock_file", DEFAULT_LOCK_FILE)
    lock_rel = _relative(lock, ctx.root)
    out = ctx.report_dir / STAGE
    out.mkdir(parents=True, exist_ok=True)
    try:
        pins = read_lock(lock)
    except LockFileError as exc:
        return ScanOutput(errors=[str(exc)])
    named = advisories.named_copy(ctx.options.get("advisory_db"), os.environ)
    source = ctx.options.get("sca_source") or ("offline" if named else "both")
    result.metadata.update(
        {"sca_source": source, "lock_file": lock_rel, "locked_packages": str(len(pins))}
    )
    offline: list[Reported] = []
    live: list[Reported] = []
    audit_errors: list[str | None] = []
    if source in ("offline", "both"):
        audit_errors.append(_audit_offline(ctx, pins, lock_rel, out, result, offline))
    if source == "both":
        audit_errors.append(_audit_pip_audit(ctx, lock, lock_rel, out, result, live))
    if source not in ("offline", "both"):
        audit_errors.append(f"unknown sca_source {source!r} (use 'offline' or 'both')")
    findings, merged = merge(offline, live)
    result.findings.extend(findings)
    result.notes.extend(merged)
    verdicts: list[licenses.LicenseVerdict] = []
    licence_error = _licences(ctx, pins, lock_rel, out, result, verdicts)
    sbom_error = _sbom(ctx, lock, pins, verdicts, out, result)
    errors = [error for error in (*audit_errors, sbom_error, licence_error) if error]
    return ScanOutput(
        findings=result.findings,
        tool_versions=result.tool_versions,
        artifacts=result.artifacts,
        notes=result.notes,
        metadata=result.metadata,
        errors=errors,
    )

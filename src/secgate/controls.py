"""The controls we claim, as data: ``security/controls.yml``.

One list says, for each control, what it promises, where it is built, where the
promise comes from (the requirements note's MoSCoW item, an OWASP ASVS 4.0.3
level 2 requirement, a DICT criterion) and what proves it: tests by pytest node
id, semgrep rules, scan stages. SECURITY.md's table is generated from it
(``secgate controls --write SECURITY.md``), a test fails when a listed test or
rule does not exist, and the report marks each control *proven* only when this
run's test results and scans back it (:func:`judge`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secgate.waivers import check_entry

TABLE_START = "<!-- controls:start (generated from security/controls.yml: make controls) -->"
TABLE_END = "<!-- controls:end -->"
_REQUIRED = ("id", "statement", "where", "source")
_OPTIONAL = ("tests", "rules", "scans")
_SCANS = ("sast", "sca", "secrets", "dast", "config")


class ControlsError(ValueError):
    """controls.yml cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Control:
    """One promise and its proof."""

    id: str
    statement: str
    where: str
    source: tuple[str, ...]
    tests: tuple[str, ...] = ()  # pytest node ids; a file (or folder/) alone: every test in it
    rules: tuple[str, ...] = ()  # "semgrep:<rule id>"
    scans: tuple[str, ...] = ()  # stages whose pass in this run is part of the proof


def load_controls(path: Path) -> list[Control]:
    """Read controls.yml; every entry needs an id, a statement, where, a source and a proof."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ControlsError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("controls"), list):
        raise ControlsError(f"{path}: expected 'controls:' followed by a list of entries")
    controls = [_control(path, n, entry) for n, entry in enumerate(data["controls"], 1)]
    ids = [c.id for c in controls]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ControlsError(f"{path}: control ids used twice: {', '.join(duplicates)}")
    return controls


def _control(path: Path, number: int, entry: Any) -> Control:
    where = f"{path}: control #{number}"
    check_entry(where, entry, _REQUIRED, _OPTIONAL, ControlsError)
    control = Control(
        id=str(entry["id"]),
        statement=" ".join(str(entry["statement"]).split()),
        where=" ".join(str(entry["where"]).split()),
        source=_strings(where, "source", entry["source"]),
        tests=_strings(where, "tests", entry.get("tests") or []),
        rules=_strings(where, "rules", entry.get("rules") or []),
        scans=_strings(where, "scans", entry.get("scans") or []),
    )
    if not (control.tests or control.rules or control.scans):
        raise ControlsError(f"{where} ({control.id}): names no test, rule or scan that proves it")
    unknown = sorted(set(control.scans) - set(_SCANS))
    if unknown:
        raise ControlsError(f"{where} ({control.id}): unknown scans {unknown}; known: {_SCANS}")
    return control


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ControlsError(f"{where}: {key} must be a list of non-empty strings")
    return tuple(value)


def missing_references(controls: Iterable[Control], root: Path) -> list[str]:
    """Every listed test or rule that does not exist in ``root``, one readable line each."""
    rule_ids = semgrep_rule_ids(root / "security" / "semgrep")
    problems = []
    for control in controls:
        for node_id in control.tests:
            reason = _missing_test(root, node_id)
            if reason:
                problems.append(f"{control.id}: test {node_id}: {reason}")
        for rule in control.rules:
            kind, _, name = rule.partition(":")
            if kind != "semgrep" or name not in rule_ids:
                problems.append(f"{control.id}: rule {rule}: no such semgrep rule")
    return problems


def semgrep_rule_ids(folder: Path) -> set[str]:
    ids: set[str] = set()
    for path in sorted(folder.glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        ids.update(str(rule["id"]) for rule in data.get("rules", []) if "id" in rule)
    return ids


def _missing_test(root: Path, node_id: str) -> str | None:
    file_part, _, rest = node_id.partition("::")
    path = root / file_part
    if file_part.endswith("/") and not rest:
        return None if file_part.startswith("tests/") and path.is_dir() else "no such test folder"
    if not file_part.startswith("tests/") or not path.is_file():
        return "no such test file"
    if not path.name.startswith("test_"):
        return "not a test module (pytest collects test_*.py only)"
    if not rest:
        return None
    names = [part.split("[", 1)[0] for part in rest.split("::")]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope: list[ast.stmt] = tree.body
    for name in names:
        found = next(
            (
                node
                for node in scope
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and node.name == name
            ),
            None,
        )
        if found is None:
            return f"no {name} in {file_part}"
        scope = found.body if isinstance(found, ast.ClassDef) else []
    return None


def render_table(controls: Iterable[Control]) -> str:
    """SECURITY.md's control table (Markdown), between the generated-section markers."""
    lines = [
        TABLE_START,
        "| id | control | where | proven by | source |",
        "|---|---|---|---|---|",
    ]
    for c in controls:
        proof = [f"`{t}`" for t in c.tests] + [f"`{r}`" for r in c.rules]
        proof += [f"{s} stage" for s in c.scans]
        lines.append(
            f"| `{c.id}` | {_cell(c.statement)} | {_cell(c.where)} | {', '.join(proof)} "
            f"| {_cell('; '.join(c.source))} |"
        )
    return "\n".join([*lines, TABLE_END])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def replace_table(document: str, controls: Iterable[Control]) -> str:
    """``document`` with its generated control table replaced by a fresh one."""
    start, end = document.find(TABLE_START), document.find(TABLE_END)
    if start < 0 or end < start:
        raise ControlsError(f"the document has no '{TABLE_START}' ... '{TABLE_END}' section")
    return document[:start] + render_table(controls) + document[end + len(TABLE_END) :]


@dataclass(frozen=True)
class Verdict:
    """How this run's evidence backs one control."""

    control: Control
    status: str  # "proven" or "unproven"
    evidence: tuple[str, ...]  # per test/rule/scan: what this run showed

    @property
    def proven(self) -> bool:
        return self.status == "proven"


def judge(
    controls: Iterable[Control],
    test_outcomes: Mapping[str, str] | None,
    stage_verdicts: Mapping[str, str],
) -> list[Verdict]:
    """Mark each control proven only when every test, rule and scan it names passed in this run.

    ``test_outcomes`` maps pytest node ids to "passed", "failed", "error" or
    "skipped" (None: no test results were given to this run); ``stage_verdicts``
    maps the stages that ran to their gate verdict ("pass" or else).
    """
    verdicts = []
    for control in controls:
        evidence = [_test_evidence(node_id, test_outcomes) for node_id in control.tests]
        for rule in control.rules:
            evidence.append(f"{rule}: {_stage_evidence('sast', stage_verdicts)}")
        for stage in control.scans:
            evidence.append(f"{stage} stage: {_stage_evidence(stage, stage_verdicts)}")
        proven = all(line.endswith(": passed") for line in evidence)
        verdicts.append(Verdict(control, "proven" if proven else "unproven", tuple(evidence)))
    return verdicts


def _test_evidence(node_id: str, outcomes: Mapping[str, str] | None) -> str:
    if outcomes is None:
        return f"{node_id}: no test results in this run"
    matched = [
        outcome
        for case, outcome in outcomes.items()
        if case == node_id
        or case.startswith((node_id + "::", node_id + "["))
        or (node_id.endswith("/") and case.startswith(node_id))
    ]
    if not matched:
        return f"{node_id}: missing from this run's test results"
    bad = sorted({o for o in matched if o != "passed"})
    if bad:
        return f"{node_id}: {len(matched)} case(s), {', '.join(bad)}"
    return f"{node_id}: {len(matched)} case(s): passed"


def _stage_evidence(stage: str, stage_verdicts: Mapping[str, str]) -> str:
    verdict = stage_verdicts.get(stage)
    if verdict is None:
        return f"{stage} did not run in this run"
    return "passed" if verdict == "pass" else f"{stage} {verdict}"

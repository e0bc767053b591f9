"""The coverage table in security/README.md and the semgrep rules cannot drift apart.

Every rule has annotated cases that must match (``ruleid:``) and must not
(``ok:``); every rule is named in the coverage table; every class of the CWE
Top 25 (2024) and the OWASP Top 10 (2021) has a row with no blank cell.
"""

from __future__ import annotations

import ast
import re

import pytest
import yaml
from secgate_support import REPO, SECURITY

RULES = SECURITY / "semgrep"
README = SECURITY / "README.md"

CWE_TOP_25_2024 = [
    "CWE-79", "CWE-787", "CWE-89", "CWE-352", "CWE-22", "CWE-125", "CWE-78", "CWE-416",
    "CWE-862", "CWE-434", "CWE-94", "CWE-20", "CWE-77", "CWE-287", "CWE-269", "CWE-502",
    "CWE-200", "CWE-863", "CWE-918", "CWE-119", "CWE-476", "CWE-798", "CWE-190", "CWE-400",
    "CWE-306",
]  # fmt: skip
OWASP_TOP_10_2021 = [f"A{n:02d}" for n in range(1, 11)]
BLANK = {"", "-", "—", "n/a", "?", "tbd", "todo"}


def rule_ids() -> dict[str, str]:
    """{rule id: the .yml it is in} for every rule we ship."""
    ids = {}
    for path in sorted(RULES.glob("*.yml")):
        for rule in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            ids[str(rule["id"])] = path.name
    return ids


def coverage_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Coverage by weakness class")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def table_rows() -> dict[str, list[str]]:
    """{first cell: cells} for every row of the section's tables (header rows left out)."""
    rows = {}
    for line in coverage_section().splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if cells[0] in {"class", "category"}:
            continue
        rows[cells[0]] = cells
    return rows


def row_for(key: str) -> list[str]:
    """The row whose first cell starts with ``key`` (e.g. "CWE-79 XSS" for "CWE-79")."""
    found = [cells for first, cells in table_rows().items() if re.match(rf"{key}\b", first)]
    assert len(found) == 1, f"{key}: {len(found)} rows in the coverage table"
    return found[0]


@pytest.mark.parametrize("rule_file", sorted(p.name for p in RULES.glob("*.yml")))
def test_every_rule_has_cases_that_must_and_must_not_match(rule_file: str) -> None:
    cases = (RULES / rule_file).with_suffix(".py")
    assert cases.is_file(), f"{rule_file} has no test file next to it"
    text = cases.read_text(encoding="utf-8")
    for rule_id in [i for i, f in rule_ids().items() if f == rule_file]:
        assert re.search(rf"#\s*ruleid:.*\b{re.escape(rule_id)}\b", text), f"{rule_id}: no ruleid:"
        assert re.search(rf"#\s*ok:.*\b{re.escape(rule_id)}\b", text), f"{rule_id}: no ok:"


@pytest.mark.parametrize("rule_id", sorted(rule_ids()))
def test_every_rule_is_in_the_coverage_table(rule_id: str) -> None:
    assert f"`{rule_id}`" in coverage_section(), f"{rule_id} is missing from the coverage table"


@pytest.mark.parametrize("key", CWE_TOP_25_2024 + OWASP_TOP_10_2021)
def test_every_class_has_a_row_without_a_blank_cell(key: str) -> None:
    cells = row_for(key)
    assert len(cells) == 4, f"{key}: expected class | static | other stages | notes"
    # The notes column may say "—"; what covers the class, or why nothing can, may not.
    assert all(cell.lower() not in BLANK for cell in cells[:3]), f"{key}: blank cell in {cells}"
    assert cells[3], f"{key}: empty notes cell"


def test_the_rules_a_row_names_exist() -> None:
    """A renamed or deleted rule must not linger in the table as if it still covered a class."""
    named = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", coverage_section()))
    unknown = named - set(rule_ids())
    assert not unknown, f"coverage table names rules that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize("package", ["secgate", "devstack", "mutation"])
def test_packages_the_request_taint_rules_skip_import_no_flask(package: str) -> None:
    """The Flask request-taint rules exclude these packages for speed; that holds only if
    no Flask request can reach them."""
    for path in sorted((REPO / "src" / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            flask = [n for n in names if n.split(".")[0] == "flask" or n.startswith("flask_")]
            assert not flask, f"{path.relative_to(REPO)} imports {flask}"


def test_request_taint_rules_skip_only_the_packages_checked_above() -> None:
    for rule_file in RULES.glob("*.yml"):
        for rule in yaml.safe_load(rule_file.read_text(encoding="utf-8"))["rules"]:
            if rule.get("mode") != "taint":
                continue
            excluded = rule.get("paths", {}).get("exclude", [])
            assert all(e.strip("*/") in {"secgate", "devstack", "mutation"} for e in excluded), (
                f"{rule['id']} skips {excluded}: only packages checked here may be skipped"
            )

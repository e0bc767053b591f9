"""The fault table generator: renders recorded rows, replaces only its own section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faults.report import BEGIN, END, main, render, replace_section
from faults.results import REPO_ROOT

ROW = {
    "fault": "mongodb-primary-killed",
    "title": "kill -9 of the MongoDB primary",
    "test": "tests/faults/test_mongodb_faults.py::test_x",
    "attempted": 10,
    "acknowledged": 9,
    "lost": 0,
    "duplicated": 0,
    "recovery_s": 2.1,
    "max_latency_s": 3.0,
    "max_error_latency_s": 3.0,
    "answers": {"201": 9, "503": 2},
    "replayed": 0,
    "notes": "a | b",
    "measured_at": "2026-12-02T11:00:00Z",
    "machine": "Linux x86_64",
}


def test_rows_are_rendered_between_the_markers() -> None:
    section = render([ROW])
    assert section.startswith(BEGIN)
    assert section.rstrip().endswith(END)
    assert "| kill -9 of the MongoDB primary | 10 | 9 | **0** | **0** | 2.1 | 3.0 |" in section
    assert "a \\| b" in section  # a cell cannot break the table


def test_only_the_section_is_replaced() -> None:
    document = (
        f"# Title\n\nbefore\n\n{BEGIN}\nSTALE-ROW\n{END}\n\n## Attacks at the edge\n\nafter\n"
    )
    updated = replace_section(document, render([ROW]))
    assert updated.startswith("# Title\n\nbefore\n\n")
    assert updated.endswith(f"{END}\n\n## Attacks at the edge\n\nafter\n")
    assert "STALE-ROW" not in updated
    with pytest.raises(ValueError, match="markers"):
        replace_section("# no markers\n", render([ROW]))


def test_write_updates_a_document_from_a_results_directory(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "mongodb-primary-killed.json").write_text(json.dumps(ROW), encoding="utf-8")
    document = tmp_path / "reliability.md"
    document.write_text(f"x\n{BEGIN}\n{END}\n", encoding="utf-8")
    assert main(["--results", str(results), "--write", str(document)]) == 0
    assert "kill -9 of the MongoDB primary" in document.read_text(encoding="utf-8")
    assert main(["--results", str(tmp_path / "empty")]) == 1


def test_the_committed_document_has_a_measured_row_for_every_fault_test() -> None:
    text = (REPO_ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    section = text[text.index(BEGIN) : text.index(END)]
    for test_file in sorted((REPO_ROOT / "tests" / "faults").glob("test_*_faults.py")):
        for line in test_file.read_text(encoding="utf-8").splitlines():
            if line.startswith("def test_"):
                name = line.removeprefix("def ").split("(")[0]
                assert f"{test_file.name}::{name}" in section, f"no row for {name}"

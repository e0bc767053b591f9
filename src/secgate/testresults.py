"""This run's test results (pytest's JUnit XML), as pytest node ids and outcomes.

``make test`` writes ``build/junit-tests.xml``; ``secgate scan --test-results``
puts a copy in the report bundle and judges each control of
``security/controls.yml`` against it (:func:`secgate.controls.judge`). The file
comes from outside secgate, so it is parsed with defusedxml.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from defusedxml import ElementTree

if TYPE_CHECKING:  # the type only: parsing goes through defusedxml
    from xml.etree.ElementTree import Element

OUTCOMES = ("passed", "failed", "error", "skipped")


class JUnitError(ValueError):
    """The file is not pytest JUnit XML we can read; the message says why."""


@dataclass(frozen=True)
class JUnitResults:
    """Outcome per pytest node id, and where they came from."""

    source: str
    outcomes: dict[str, str]
    written_at: str = "unknown"  # the test run's own timestamp, from the file

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    def summary(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
        return (
            f"tests: {len(self.outcomes)} cases ({parts or 'none'}) from {self.source}, "
            f"run at {self.written_at}"
        )


def load(path: Path) -> JUnitResults:
    """Read pytest's JUnit XML (``--junitxml``) into node ids and outcomes."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ValueError, ElementTree.ParseError) as exc:  # ValueError: defusedxml refusals
        raise JUnitError(f"{path}: not readable JUnit XML: {exc}") from exc
    if root is None:
        raise JUnitError(f"{path}: empty document")
    outcomes = {}
    for case in root.iter("testcase"):
        node_id = node_id_of(case.get("classname", ""), case.get("name", ""))
        if node_id:
            outcomes[node_id] = _outcome(case)
    if not outcomes:
        raise JUnitError(f"{path}: no test cases in it")
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    stamp = suite.get("timestamp", "unknown") if suite is not None else "unknown"
    return JUnitResults(path.name, outcomes, stamp)


def node_id_of(classname: str, name: str) -> str:
    """``tests.api.test_x.TestY`` + ``test_z[a]`` -> ``tests/api/test_x.py::TestY::test_z[a]``.

    pytest writes the module as dotted parts followed by any test classes;
    classes are the parts that start with a capital letter.
    """
    parts = [p for p in classname.split(".") if p]
    if not parts or not name:
        return ""
    split = next((n for n, p in enumerate(parts) if p[:1].isupper()), len(parts))
    module = "/".join(parts[:split]) + ".py"
    return "::".join([module, *parts[split:], name])


def _outcome(case: Element) -> str:
    if case.find("failure") is not None:
        return "failed"
    if case.find("error") is not None:
        return "error"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"

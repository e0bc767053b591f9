"""``make mutation``'s own rules: config checks, how mutants are counted, when the verdict fails.

cosmic-ray itself is not run here (that is ``make mutation``); these tests
feed the classifier the ``cosmic-ray dump`` lines it produces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mutation.annotation_mutants import REASON, annotation_spans, in_annotation
from mutation.config import MutationConfig, MutationConfigError, load_config
from mutation.report import save_result, verdicts, write_report
from mutation.run import ModuleResult, Mutant, _classify, source_sha256, with_equivalents

REPO = Path(__file__).resolve().parents[2]
TOKENS_LINES = (REPO / "src/eventsvc/tokens.py").read_text(encoding="utf-8").splitlines()


def code_at(line: int) -> str:
    """A TOML string of tokens.py's line ``line``, stripped, as an equivalent entry names it."""
    return json.dumps(TOKENS_LINES[line - 1].strip())


def config_text(**overrides: str) -> str:
    values = {
        "threshold": "0.9",
        "path": "src/eventsvc/tokens.py",
        "tests": '["tests/api/test_token_secret.py"]',
        "equivalent": "",
    }
    values.update(overrides)
    return (
        f"threshold = {values['threshold']}\n"
        f'[[module]]\npath = "{values["path"]}"\ntests = {values["tests"]}\n'
        f"{values['equivalent']}"
    )


def load(tmp_path: Path, text: str) -> MutationConfig:
    path = tmp_path / "mutation.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, REPO)


def dump_line(outcome: str | None, output: str = "", line: int = 10) -> list[Any]:
    mutation = {"operator_name": "core/AddNot", "start_pos": [line, 4], "end_pos": [line, 9]}
    result = None
    if outcome is not None:
        worker = "skipped" if outcome == "skipped" else "normal"
        test = None if outcome == "skipped" else outcome
        result = {
            "worker_outcome": worker,
            "test_outcome": test,
            "output": output,
            "diff": "-a\n+b",
        }
    return [{"job_id": "x", "mutations": [mutation]}, result]


def test_the_committed_config_loads() -> None:
    config = load_config(REPO / "security" / "mutation.toml", REPO)
    assert config.threshold >= 0.9
    assert config.module("src/eventsvc/tokens.py").tests


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"threshold": "1.5"}, "threshold"),
        ({"path": "src/eventsvc/nope.py"}, "does not exist"),
        ({"tests": '["tests/nope.py"]'}, "does not exist"),
        (
            {
                "equivalent": '[[equivalent]]\nmodule = "src/eventsvc/tokens.py"\n'
                f'operator = "core/AddNot"\nline = 1\ncolumn = 0\ncode = {code_at(1)}\n'
                'reason = " "\n'
            },
            "reason",
        ),
        (
            {
                "equivalent": '[[equivalent]]\nmodule = "src/eventsvc/tokens.py"\n'
                'operator = "core/AddNot"\nline = 1\ncolumn = 0\nreason = "r"\n'
            },
            "missing 'code'",
        ),
    ],
)
def test_bad_configs_are_refused(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(MutationConfigError, match=message):
        load(tmp_path, config_text(**overrides))


def equivalent_naming(line: int, code: str) -> str:
    return (
        '[[equivalent]]\nmodule = "src/eventsvc/tokens.py"\noperator = "core/AddNot"\n'
        f'line = {line}\ncolumn = 0\ncode = {code}\nreason = "r"\n'
    )


def test_an_equivalent_whose_line_moved_is_refused_with_where_it_went(tmp_path: Path) -> None:
    """The code the entry names is two lines further down now (lines were added above it)."""
    stripped = [text.strip() for text in TOKENS_LINES]
    line = next(
        n
        for n in range(20, len(stripped))
        if len(stripped[n - 1]) > 20 and stripped.count(stripped[n - 1]) == 1
    )
    moved = equivalent_naming(line - 2, code_at(line))
    with pytest.raises(MutationConfigError, match=rf"now on line {line}\b"):
        load(tmp_path, config_text(equivalent=moved))


@pytest.mark.parametrize("line", [10, 100_000, 0])
def test_an_equivalent_naming_code_that_is_gone_is_refused(tmp_path: Path, line: int) -> None:
    gone = equivalent_naming(line, json.dumps("this code is in no module"))
    with pytest.raises(MutationConfigError, match="no longer in the module"):
        load(tmp_path, config_text(equivalent=gone))


def test_mutants_are_classified_and_equivalents_need_their_exact_position(tmp_path: Path) -> None:
    equivalent = (
        '[[equivalent]]\nmodule = "src/eventsvc/tokens.py"\noperator = "core/Add.*"\n'
        f'line = 10\ncolumn = 4\ncode = {code_at(10)}\nreason = "log text only"\n'
    )
    config = load(tmp_path, config_text(equivalent=equivalent))
    mutants = [
        _classify(dump_line(outcome, output, line), [])
        for outcome, output, line in [
            ("killed", "1 failed", 11),
            ("killed", "timeout", 11),
            ("survived", "", 11),
            ("survived", "", 10),  # at the equivalent's position
            ("killed", "", 10),  # there too, but killed: stays killed
            ("incompetent", "", 11),
            ("skipped", "", 11),
            (None, "", 11),
        ]
    ]
    result = ModuleResult("src/eventsvc/tokens.py", ("t",), "x", 1.0, 1.0, mutants)
    assert [mutant.outcome for mutant in with_equivalents(result, config).mutants] == [
        "killed",
        "timeout",
        "survived",
        "equivalent",
        "killed",
        "incompetent",
        "skipped",
        "pending",
    ]


def result_with(*outcomes: str, sha: str) -> ModuleResult:
    mutants = [Mutant("core/AddNot", 1, 0, outcome, "") for outcome in outcomes]  # type: ignore[arg-type]
    return ModuleResult("src/eventsvc/tokens.py", ("t",), sha, 1.0, 1.0, mutants)


def test_the_kill_rate_counts_timeouts_as_detected_and_ignores_equivalents() -> None:
    result = result_with("killed", "timeout", "survived", "equivalent", "incompetent", sha="x")
    assert result.kill_rate == pytest.approx(2 / 3)


def test_verdicts_below_threshold_stale_and_not_run(tmp_path: Path) -> None:
    config = load(tmp_path, config_text())
    module = config.modules[0]
    report_dir = tmp_path / "report"
    assert [verdict.status for verdict in verdicts(config, REPO, report_dir)] == ["not run"]

    current = source_sha256(REPO / module.path)
    save_result(report_dir, module, result_with(*["killed"] * 9, "survived", sha=current))
    assert verdicts(config, REPO, report_dir)[0].status == "pass"
    save_result(report_dir, module, result_with(*["killed"] * 8, "survived", sha=current))
    assert verdicts(config, REPO, report_dir)[0].status == "below threshold"
    save_result(report_dir, module, result_with("killed", sha="0" * 64))
    found = verdicts(config, REPO, report_dir)
    assert found[0].status == "stale"
    assert "stale" in write_report(config, found, report_dir).read_text(encoding="utf-8")


POSTPONED = """\
from __future__ import annotations

def first(value: str | None, *rest: int | str, **named: bytes | None) -> dict[str, int] | None:
    return None if value is None else {value: len(rest) | len(named)}

class Holder:
    field: int | None = 1 | 2
    \u00e9t\u00e9: str | None  # non-ASCII before the annotation: columns are characters
"""


def test_annotation_spans_cover_parameters_returns_and_annotated_names() -> None:
    spans = annotation_spans(POSTPONED)
    lines = POSTPONED.splitlines()

    def at(line: int, text: str, occurrence: int = 0) -> tuple[int, int]:
        column = -1
        for _ in range(occurrence + 1):
            column = lines[line - 1].index(text, column + 1)
        return line, column

    inside = [at(3, "|"), at(3, "|", 1), at(3, "|", 2), at(3, "|", 3), at(7, "|"), at(8, "|")]
    outside = [at(4, "|"), at(7, "|", 1), at(4, "is None")]
    assert all(in_annotation(spans, *position) for position in inside)
    assert not any(in_annotation(spans, *position) for position in outside)
    assert (at(8, "str"), (8, len(lines[7].split("  #")[0]))) in spans  # characters, not bytes


def test_annotations_are_evaluated_without_postponement_so_none_are_skipped() -> None:
    assert annotation_spans(POSTPONED.replace("from __future__ import annotations", "")) == []


def test_a_mutant_skipped_in_an_annotation_is_equivalent_with_its_reason() -> None:
    spans = annotation_spans(POSTPONED)
    line = POSTPONED.splitlines().index("class Holder:") + 2
    column = POSTPONED.splitlines()[line - 1].index("|")
    skipped = dump_line("skipped", line=line)
    skipped[0]["mutations"][0]["start_pos"] = [line, column]
    mutant = _classify(skipped, spans)
    assert (mutant.outcome, mutant.reason) == ("equivalent", REASON)
    # Skipped elsewhere (an excluded operator) stays skipped; run in an annotation stays run.
    assert _classify(dump_line("skipped", line=4), spans).outcome == "skipped"
    ran = dump_line("survived", line=line)
    ran[0]["mutations"][0]["start_pos"] = [line, column]
    assert _classify(ran, spans).outcome == "survived"


def test_the_annotation_switch_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(MutationConfigError, match="skip_annotation_mutants"):
        load(tmp_path, 'skip_annotation_mutants = "yes"\n' + config_text())
    assert load(
        tmp_path, "skip_annotation_mutants = true\n" + config_text()
    ).skip_annotation_mutants


def test_the_modules_whose_annotation_mutants_are_skipped_never_evaluate_annotations() -> None:
    """The config's justification, checked: postponed annotations and none of the code that
    reads them at run time. A module that gains such code fails here, not silently."""
    config = load_config(REPO / "security" / "mutation.toml", REPO)
    assert config.skip_annotation_mutants
    readers = ("BaseModel", "RootModel", "get_type_hints", "flask_openapi3", "APIBlueprint")
    for module in config.modules:
        source = (REPO / module.path).read_text(encoding="utf-8")
        assert "from __future__ import annotations" in source, module.path
        assert not [reader for reader in readers if reader in source], module.path

"""``make mutation``'s own rules: config checks, how mutants are counted, when the verdict fails.

cosmic-ray itself is not run here (that is ``make mutation``); these tests
feed the classifier the ``cosmic-ray dump`` lines it produces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mutation.config import MutationConfig, MutationConfigError, load_config
from mutation.report import save_result, verdicts, write_report
from mutation.run import ModuleResult, Mutant, _classify, source_sha256, with_equivalents

REPO = Path(__file__).resolve().parents[2]


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
                'operator = "core/AddNot"\nline = 1\ncolumn = 0\nreason = " "\n'
            },
            "reason",
        ),
    ],
)
def test_bad_configs_are_refused(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(MutationConfigError, match=message):
        load(tmp_path, config_text(**overrides))


def test_mutants_are_classified_and_equivalents_need_their_exact_position(tmp_path: Path) -> None:
    equivalent = (
        '[[equivalent]]\nmodule = "src/eventsvc/tokens.py"\noperator = "core/Add.*"\n'
        'line = 10\ncolumn = 4\nreason = "log text only"\n'
    )
    config = load(tmp_path, config_text(equivalent=equivalent))
    mutants = [
        _classify(dump_line(outcome, output, line))
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

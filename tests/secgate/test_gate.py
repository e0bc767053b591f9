"""The gate's decision rules, on hand-made stage results (no scanner needed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from secgate_support import SECURITY

from secgate.gate import evaluate
from secgate.model import Confidence, Finding, Severity, StageResult, fingerprint
from secgate.policy import DEFAULT_POLICY, PolicyError, load_policy
from secgate.waivers import Waiver, WaiverError, load_waivers

TODAY = dt.date(2026, 6, 1)


def finding(
    stage: str = "sast",
    severity: Severity = Severity.HIGH,
    confidence: Confidence = Confidence.HIGH,
    rule: str = "pickle-load",
) -> Finding:
    return Finding(
        stage=stage,
        tool="semgrep",
        rule_id=rule,
        severity=severity,
        confidence=confidence,
        message="unpickling untrusted data",
        location="src/app/x.py:3",
        fingerprint=fingerprint(stage, rule, severity.name, confidence.name),
        path="src/app/x.py",
        line=3,
    )


def waiver(fp: str, expires: dt.date = TODAY, stage: str = "sast") -> Waiver:
    return Waiver(fingerprint=fp, reason="accepted", owner="team-a", expires=expires, stage=stage)


def test_no_findings_passes() -> None:
    verdict = evaluate([StageResult("sast", ran=True)], DEFAULT_POLICY, [], TODAY)
    assert verdict.passed
    assert verdict.exit_code == 0


def test_blocking_finding_fails_and_names_it() -> None:
    verdict = evaluate([StageResult("sast", True, [finding()])], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert verdict.exit_code == 1
    assert verdict.reasons == ["sast: semgrep pickle-load at src/app/x.py:3"]


@pytest.mark.parametrize(
    ("stage", "severity", "confidence", "blocks"),
    [
        ("sast", Severity.MEDIUM, Confidence.MEDIUM, True),
        ("sast", Severity.HIGH, Confidence.LOW, False),
        ("sast", Severity.LOW, Confidence.HIGH, False),
        ("sca", Severity.LOW, Confidence.LOW, True),
        ("secrets", Severity.INFO, Confidence.LOW, True),
        ("dast", Severity.MEDIUM, Confidence.LOW, True),
        ("dast", Severity.LOW, Confidence.HIGH, False),
        ("config", Severity.MEDIUM, Confidence.LOW, True),
        ("config", Severity.LOW, Confidence.HIGH, False),
    ],
)
def test_default_thresholds(
    stage: str, severity: Severity, confidence: Confidence, blocks: bool
) -> None:
    result = StageResult(stage, True, [finding(stage, severity, confidence)])
    assert evaluate([result], DEFAULT_POLICY, [], TODAY).passed is not blocks


def test_committed_policy_matches_the_defaults() -> None:
    assert load_policy(SECURITY / "policy.yml") == DEFAULT_POLICY


def test_stage_that_did_not_run_fails_even_without_findings() -> None:
    result = StageResult("dast", ran=False, error="schemathesis not found")
    verdict = evaluate([result], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert verdict.reasons == ["stage dast did not run: schemathesis not found"]


def test_valid_waiver_passes_the_finding() -> None:
    f = finding()
    verdict = evaluate(
        [StageResult("sast", True, [f])], DEFAULT_POLICY, [waiver(f.fingerprint)], TODAY
    )
    assert verdict.passed
    assert verdict.stages[0].waived == [f]
    assert verdict.used_waivers == [waiver(f.fingerprint)]


@pytest.mark.parametrize(
    ("days_left", "expired"), [(-1, True), (0, False), (1, False), (365, False)]
)
def test_a_waiver_is_valid_up_to_and_including_its_expiry_date(
    days_left: int, expired: bool
) -> None:
    assert waiver("c" * 64, expires=TODAY + dt.timedelta(days=days_left)).expired(TODAY) is expired


def test_expired_waiver_fails_and_no_longer_covers_the_finding() -> None:
    f = finding()
    old = waiver(f.fingerprint, expires=TODAY - dt.timedelta(days=1))
    verdict = evaluate([StageResult("sast", True, [f])], DEFAULT_POLICY, [old], TODAY)
    assert not verdict.passed
    assert verdict.expired_waivers == [old]
    assert verdict.blocking == [f]


def test_unused_waiver_fails() -> None:
    stale = waiver("a" * 64)
    verdict = evaluate([StageResult("sast", True, [])], DEFAULT_POLICY, [stale], TODAY)
    assert not verdict.passed
    assert verdict.unused_waivers == [stale]
    assert "matched no finding" in verdict.reasons[0]


def test_waiver_scoped_to_a_stage_that_did_not_run_is_not_unused() -> None:
    sca_waiver = waiver("b" * 64, stage="sca")
    verdict = evaluate([StageResult("sast", True, [])], DEFAULT_POLICY, [sca_waiver], TODAY)
    assert verdict.passed
    assert verdict.unused_waivers == []


def test_waiver_for_a_below_threshold_finding_counts_as_used() -> None:
    f = finding(severity=Severity.LOW)
    verdict = evaluate(
        [StageResult("sast", True, [f])], DEFAULT_POLICY, [waiver(f.fingerprint)], TODAY
    )
    assert verdict.passed


def test_each_stage_verdict_says_whether_that_stage_passed() -> None:
    blocked = StageResult("sast", True, [finding()])
    clean = StageResult("secrets", True, [])
    not_run = StageResult("dast", ran=False, error="no target")
    verdict = evaluate([blocked, clean, not_run], DEFAULT_POLICY, [], TODAY)
    assert [stage.passed for stage in verdict.stages] == [False, True, False]


def test_stale_advisory_data_fails_the_sca_stage_and_no_other() -> None:
    """Stale advisory data is the SCA stage's failure, whatever stages ran beside it.

    The other stages sort before and after "sca" (a stage-name comparison by
    order would catch them), and the SCA stage's name is built at run time,
    as one read from argv or a results file is: compared by value, not identity.
    """
    sca_name = "".join(["s", "ca"])
    stale = StageResult(
        sca_name,
        True,
        metadata={
            "advisory_description": "a local copy",
            "advisory_as_of": (TODAY - dt.timedelta(days=30)).isoformat(),
            "advisory_data_date": (TODAY - dt.timedelta(days=30)).isoformat(),
        },
    )
    others = [StageResult(name, True, []) for name in ("config", "dast", "sast", "secrets")]
    verdict = evaluate([*others[:3], stale, others[3]], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert [reason[:24] for reason in verdict.reasons] == ["advisory data is 30 days"]
    assert {stage.stage: stage.passed for stage in verdict.stages} == {
        "config": True,
        "dast": True,
        "sast": True,
        "sca": False,
        "secrets": True,
    }


def test_waiver_reasons_name_the_waiver_by_its_fingerprint_prefix() -> None:
    fingerprint_expired, fingerprint_unused = "0123456789abcdef" * 4, "fedcba9876543210" * 4
    expired = waiver(fingerprint_expired, expires=TODAY - dt.timedelta(days=1))
    verdict = evaluate(
        [StageResult("sast", True, [])],
        DEFAULT_POLICY,
        [expired, waiver(fingerprint_unused)],
        TODAY,
    )
    assert verdict.reasons == [
        "waiver 0123456789ab (team-a) expired on 2026-05-31",
        "waiver 0123456789ab (team-a) matched no finding",
        "waiver fedcba987654 (team-a) matched no finding",
    ]


def test_a_secret_in_the_report_bundle_fails_a_passing_verdict_and_says_where() -> None:
    """`secgate scan` hands the bundle's leaks to the verdict: any leak fails it, none leaves it."""
    passing = evaluate([StageResult("sast", ran=True)], DEFAULT_POLICY, [], dt.date(2026, 6, 1))
    assert passing.passed
    assert passing.with_bundle_problems([]) is passing
    leak = "secret in the report bundle: bandit.json:3 (Secret Keyword)"
    failed = passing.with_bundle_problems([leak])
    assert not failed.passed
    assert failed.reasons[-1] == leak
    assert failed.bundle_problems == [leak]
    assert passing.passed  # the original verdict is unchanged


def test_verdicts_cannot_be_changed_after_the_decision() -> None:
    """The report and the exit code read one verdict: nothing may flip it in between."""
    verdict = evaluate([StageResult("sast", True, [finding()])], DEFAULT_POLICY, [], TODAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.passed = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.stages[0].passed = True  # type: ignore[misc]
    accepted = waiver("a" * 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        accepted.expires = TODAY + dt.timedelta(days=3650)  # type: ignore[misc]


def test_committed_waivers_file_loads() -> None:
    assert load_waivers(SECURITY / "waivers.yml") == []


VALID = """\
waivers:
  - fingerprint: {fp}
    reason: pinned by the vendor, fixed upstream in 2.0
    owner: team-a
    expires: 2026-12-31
    stage: sca
    rule: GHSA-xxxx
"""


def test_waivers_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(VALID.format(fp="c" * 64), encoding="utf-8")
    [loaded] = load_waivers(path)
    assert loaded.expires == dt.date(2026, 12, 31)
    assert (loaded.stage, loaded.rule, loaded.owner) == ("sca", "GHSA-xxxx", "team-a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers: [", "not valid YAML"),
        ("- just a list", "expected 'waivers:'"),
        (
            "waivers:\n  - fingerprint: " + "d" * 64 + "\n    owner: a\n",
            "missing stage, reason, expires",
        ),
        (VALID.format(fp="2" * 64).replace("stage: sca", "stage: lint"), "stage must be one of"),
        (VALID.format(fp="not-hex"), "64 lowercase hex"),
        (VALID.format(fp="e" * 64).replace("2026-12-31", "next year"), "expires must be a date"),
        (VALID.format(fp="f" * 64) + "    ticket: SEC-1\n", "unknown keys ticket"),
        (VALID.format(fp="1" * 64) + VALID.format(fp="1" * 64)[9:], "waived twice"),
        # Entries are numbered from 1, as a reader counts them in the file.
        (VALID.format(fp="3" * 64) + VALID.format(fp="bad")[9:], "waiver #2: fingerprint"),
    ],
)
def test_malformed_waivers_file_is_rejected_clearly(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WaiverError, match=message):
        load_waivers(path)


def test_malformed_policy_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("stages:\n  sast:\n    min_severity: scary\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown level"):
        load_policy(path)
    path.write_text("stages:\n  sast:\n    fail_on: all\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="may only set"):
        load_policy(path)

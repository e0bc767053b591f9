"""Advisory data freshness is policy (secgate.freshness, applied by secgate.gate)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from secgate_support import TOOLS_BIN

from secgate import freshness
from secgate.freshness import Acknowledgement, AcknowledgementError, load_acknowledgements
from secgate.gate import evaluate
from secgate.model import StageResult
from secgate.pipeline import RunInfo
from secgate.policy import DEFAULT_POLICY, PolicyError, load_policy
from secgate.reports import html, junit, markdown

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 12, 2)
SNAPSHOT = dt.date(2024, 10, 10)
REASON = "air-gapped build machines have only the 2024-10-10 snapshot"


def sca(as_of: dt.date | None, data_date: dt.date | None = None) -> StageResult:
    """An SCA result as the stage records its data (see AdvisoryData.metadata)."""
    data_date = data_date or as_of
    metadata = {
        "advisory_description": f"/data/pypa, dated {data_date} (stated in SOURCE.md)",
        "advisory_as_of": as_of.isoformat() if as_of else "",
        "advisory_data_date": data_date.isoformat() if data_date else "",
    }
    return StageResult("sca", True, metadata=metadata)


def ack(expires: dt.date, data_date: dt.date = SNAPSHOT) -> Acknowledgement:
    return Acknowledgement(data_date, REASON, "platform-security", expires)


def test_fresh_data_passes() -> None:
    verdict = evaluate([sca(TODAY - dt.timedelta(days=7))], DEFAULT_POLICY, [], TODAY)
    assert verdict.passed, verdict.reasons
    assert verdict.advisory_data is not None
    assert verdict.advisory_data.age_days == 7
    assert verdict.advisory_data.summary().endswith("7 days old (policy: at most 7): current")


def test_stale_data_fails_and_fails_the_sca_stage() -> None:
    verdict = evaluate([sca(TODAY - dt.timedelta(days=8))], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    [reason] = verdict.reasons
    assert reason.startswith("advisory data is 8 days old, the policy allows 7")
    assert "make advisories" in reason
    assert "stale_advisory_data" in reason
    [stage] = verdict.stages
    assert not stage.passed
    assert "TOO OLD" in verdict.advisory_data.summary()  # type: ignore[union-attr]


def test_stale_data_with_a_valid_acknowledgement_passes() -> None:
    acks = [ack(TODAY + dt.timedelta(days=90))]
    verdict = evaluate([sca(SNAPSHOT)], DEFAULT_POLICY, [], TODAY, acks)
    assert verdict.passed, verdict.reasons
    assert verdict.advisory_data is not None
    assert verdict.advisory_data.accepted_by == acks[0]
    summary = verdict.advisory_data.summary()
    assert "as of 2024-10-10, 783 days old (policy: at most 7)" in summary
    assert "STALE, accepted by platform-security until 2027-03-02" in summary


def test_acknowledgement_is_valid_through_its_expiry_day() -> None:
    verdict = evaluate([sca(SNAPSHOT)], DEFAULT_POLICY, [], TODAY, [ack(TODAY)])
    assert verdict.passed, verdict.reasons


def test_stale_data_with_an_expired_acknowledgement_fails() -> None:
    expired = ack(TODAY - dt.timedelta(days=1))
    verdict = evaluate([sca(SNAPSHOT)], DEFAULT_POLICY, [], TODAY, [expired])
    assert not verdict.passed
    assert any(r.startswith("advisory data is 783 days old") for r in verdict.reasons)
    assert (
        "stale advisory data acknowledgement for 2024-10-10 (platform-security) expired on "
        "2026-12-01" in verdict.reasons
    )


def test_expired_acknowledgement_fails_even_when_unused() -> None:
    """Like a waiver: the file must be tidied, whatever this run scanned."""
    expired = ack(TODAY - dt.timedelta(days=1))
    verdict = evaluate([sca(TODAY)], DEFAULT_POLICY, [], TODAY, [expired])
    assert not verdict.passed
    assert verdict.acknowledgement_problems == verdict.reasons


def test_unused_valid_acknowledgement_is_fine() -> None:
    """CI on GitHub has current data; the build machines' acknowledgement must not fail it."""
    verdict = evaluate([sca(TODAY)], DEFAULT_POLICY, [], TODAY, [ack(TODAY + dt.timedelta(30))])
    assert verdict.passed, verdict.reasons


def test_acknowledgement_of_other_data_does_not_apply() -> None:
    other = ack(TODAY + dt.timedelta(days=30), data_date=dt.date(2025, 1, 1))
    verdict = evaluate([sca(SNAPSHOT)], DEFAULT_POLICY, [], TODAY, [other])
    assert not verdict.passed


def test_acknowledgement_longer_than_90_days_fails() -> None:
    verdict = evaluate([sca(SNAPSHOT)], DEFAULT_POLICY, [], TODAY, [ack(TODAY + dt.timedelta(91))])
    assert not verdict.passed
    assert "more than 90 days ahead" in verdict.reasons[-1]


def test_data_without_a_date_fails() -> None:
    verdict = evaluate([sca(None)], DEFAULT_POLICY, [], TODAY)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("advisory data has no known date")


def test_no_sca_run_no_freshness_verdict() -> None:
    verdict = evaluate([StageResult("sast", True)], DEFAULT_POLICY, [], TODAY)
    assert verdict.passed
    assert verdict.advisory_data is None
    not_run = evaluate([StageResult("sca", False, error="x")], DEFAULT_POLICY, [], TODAY)
    assert not_run.advisory_data is None  # the stage failure already fails the gate


def test_policy_sets_the_maximum_age(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("stages: {}\nadvisory_data:\n  max_age_days: 2\n", encoding="utf-8")
    policy = load_policy(path)
    assert policy.advisory_max_age_days == 2
    verdict = evaluate([sca(TODAY - dt.timedelta(days=3))], policy, [], TODAY)
    assert not verdict.passed
    assert load_policy(tmp_path / "missing.yml").advisory_max_age_days == 7


def test_committed_policy_allows_seven_days() -> None:
    assert load_policy(REPO / "security" / "policy.yml").advisory_max_age_days == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: {}\nadvisory_data: {max_age_days: -1}\n", "whole number >= 0"),
        ("stages: {}\nadvisory_data: {max_age_days: soon}\n", "whole number >= 0"),
        ("stages: {}\nadvisory_data: {max_age: 3}\n", "may only set max_age_days"),
        ("stages: {}\nadvisory: {max_age_days: 3}\n", "unknown keys"),
    ],
)
def test_malformed_freshness_policy_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_acknowledgements_load_from_the_waivers_file(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(
        "waivers: []\nstale_advisory_data:\n  - data_date: 2024-10-10\n    reason: r\n"
        "    owner: o\n    expires: '2027-03-01'\n",
        encoding="utf-8",
    )
    assert load_acknowledgements(path) == [Acknowledgement(SNAPSHOT, "r", "o", dt.date(2027, 3, 1))]
    assert load_acknowledgements(tmp_path / "missing.yml") == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"data_date": "2024-10-10", "reason": "r", "owner": "o"}, "missing expires"),
        ({"data_date": "2024-10-10", "reason": "r", "owner": "o", "expires": "soon"}, "a date"),
        (
            {
                "data_date": "2024-10-10",
                "reason": "r",
                "owner": "o",
                "expires": "2027-01-01",
                "x": 1,
            },
            "unknown keys x",
        ),
    ],
)
def test_malformed_acknowledgement_is_refused(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(yaml.safe_dump({"waivers": [], "stale_advisory_data": [entry]}), "utf-8")
    with pytest.raises(AcknowledgementError, match=message):
        load_acknowledgements(path)


def test_committed_acknowledgement_covers_the_build_machines_snapshot_for_at_most_90_days() -> None:
    """.ci/run scans with the 2024-10-10 snapshot; its acceptance is dated and short."""
    [committed] = load_acknowledgements(REPO / "security" / "waivers.yml")
    assert committed.data_date == SNAPSHOT
    assert committed.owner
    assert "CI on GitHub fetches current data" in committed.reason
    assert committed.expires <= TODAY + dt.timedelta(days=freshness.MAX_ACK_DAYS)


# --- the first screen of every report ----------------------------------------------


def _info(tmp_path: Path) -> RunInfo:
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    return RunInfo("run-1", "abc123", tmp_path, tmp_path, now, now, ["sca"])


def test_reports_show_the_data_age_first(tmp_path: Path) -> None:
    verdict = evaluate([sca(SNAPSHOT)], DEFAULT_POLICY, [], TODAY)
    age = "as of 2024-10-10, 783 days old (policy: at most 7): TOO OLD"
    summary = markdown.render(_info(tmp_path), [sca(SNAPSHOT)], verdict)
    assert age in "\n".join(summary.splitlines()[:6])
    assert verdict.advisory_data is not None
    assert f"`{verdict.advisory_data.summary()}`" in summary  # whole, not cut
    page = html.render(_info(tmp_path), [sca(SNAPSHOT)], verdict, [], {}, dt.datetime.now(dt.UTC))
    first_table = page.split("<table>", 1)[1].split("</table>", 1)[0]
    assert "advisory data" in first_table
    assert age in first_table
    junit.write(tmp_path / "junit.xml", [sca(SNAPSHOT)], verdict)
    assert "advisory data is 783 days old" in (tmp_path / "junit.xml").read_text("utf-8")


def test_console_shows_data_age_right_after_the_table(tmp_path: Path) -> None:
    """`secgate scan --stages sca` with the committed fixture named as a local copy."""
    fixture = Path(__file__).resolve().parent / "fixtures"
    done = subprocess.run(
        [sys.executable, "-m", "secgate", "scan", "--stages", "sca", "--tools-bin", str(TOOLS_BIN),
         "--root", str(REPO), "--report-dir", str(tmp_path / "reports"),
         "-o", f"advisory_db={fixture / 'advisory-db'}",
         "-o", f"lock_file={fixture / 'sca_vulnerable' / 'requirements.txt'}"],
        capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    table_end = max(n for n, line in enumerate(lines) if line.startswith("└"))
    assert lines[table_end + 1].startswith("advisory data: ")
    assert "dated 2026-09-10" in lines[table_end + 1]
    assert "days old (policy: at most 7): TOO OLD" in lines[table_end + 1]

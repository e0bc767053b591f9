"""OSV range evaluation, CVSS scoring and advisory loading (secgate.osv)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from packaging.version import Version

from secgate import osv
from secgate.model import Severity

# Real PyPA advisories, copied unchanged (see its README.md).
ADVISORY_DB = Path(__file__).resolve().parent / "fixtures" / "advisory-db"


def entry(*ranges: tuple[osv.Event, ...], versions: tuple[str, ...] = ()) -> osv.AffectedPackage:
    return osv.AffectedPackage("demo", ranges, versions)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1", True), ("2.10", True), ("2.10.1", False), ("2.11", False), ("2.10.1rc1", True)],
)
def test_fixed_version_itself_is_not_affected(version: str, expected: bool) -> None:
    rng = (("introduced", "0"), ("fixed", "2.10.1"))
    assert osv.is_affected(version, entry(rng)) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0", False), ("1.1", True), ("1.11.0", True), ("1.11.1", False)]
)
def test_last_affected_is_inclusive(version: str, expected: bool) -> None:
    rng = (("introduced", "1.1"), ("last_affected", "1.11.0"))
    assert osv.is_affected(version, entry(rng)) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0", True), ("1.5", False), ("2.0", True), ("2.2", True), ("2.3", False), ("3.0", True)],
)
def test_multiple_ranges_and_reintroduction(version: str, expected: bool) -> None:
    first = (("introduced", "0"), ("fixed", "1.5"))
    second = (("introduced", "2.0"), ("fixed", "2.3"), ("introduced", "3.0"))
    assert osv.is_affected(version, entry(first, second)) is expected


def test_explicit_versions_list_is_compared_as_versions() -> None:
    listed = entry(versions=("2.10", "0.8.0-alpha2"))
    assert osv.is_affected("2.10.0", listed)
    assert osv.is_affected("0.8.0a2", listed)
    assert not osv.is_affected("2.10.1", listed)


def test_unparsable_range_version_fails_closed() -> None:
    assert osv.is_affected("1.0", entry((("introduced", "not-a-version"),)))


def test_fix_versions_are_those_above_the_locked_one() -> None:
    rng_a = (("introduced", "0"), ("fixed", "1.2"))
    rng_b = (("introduced", "2.0"), ("fixed", "2.4"))
    assert osv.fix_versions("1.0", entry(rng_a, rng_b)) == ("1.2", "2.4")
    assert osv.fix_versions("2.1", entry(rng_a, rng_b)) == ("2.4",)


versions = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)).map(
    lambda parts: Version(".".join(map(str, parts)))
)


@given(versions, versions, versions)
def test_introduced_fixed_is_a_half_open_interval(
    low: Version, high: Version, probe: Version
) -> None:
    """Property: a well-formed introduced/fixed range means exactly low <= v < high."""
    assume(low < high)
    rng = (("introduced", str(low)), ("fixed", str(high)))
    assert osv.in_range(probe, rng) is (low <= probe < high)


@given(versions, versions, versions)
def test_introduced_last_affected_is_a_closed_interval(
    low: Version, last: Version, probe: Version
) -> None:
    assume(low <= last)
    rng = (("introduced", str(low)), ("last_affected", str(last)))
    assert osv.in_range(probe, rng) is (low <= probe <= last)


# Real vectors: v3.1 ones from PyPA/GHSA advisories (werkzeug PYSEC-2023-221 among them),
# v4.0 ones from GHSA advisories; scores as FIRST's calculators give them.
@pytest.mark.parametrize(
    ("kind", "vector", "score", "severity"),
    [
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Severity.CRITICAL),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, Severity.HIGH),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, Severity.MEDIUM),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1, Severity.LOW),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, Severity.INFO),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3,
         Severity.CRITICAL),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", 8.7,
         Severity.HIGH),
        ("CVSS_V4", "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:N/VA:H/SC:N/SI:N/SA:N", 6.9,
         Severity.MEDIUM),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0,
         Severity.INFO),
    ],
)  # fmt: skip
def test_cvss_base_score_and_rating(
    kind: str, vector: str, score: float, severity: Severity
) -> None:
    rated = osv.rate([{"type": kind, "score": vector}], None)
    assert rated == osv.Rated(severity, f"{vector} = {score}")


def test_advisory_severity_comes_from_its_cvss_vector() -> None:
    advisory = osv.load_advisory(ADVISORY_DB / "vulns" / "werkzeug" / "PYSEC-2023-221.yaml")
    assert advisory.severity is Severity.HIGH  # AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H = 7.5
    assert advisory.rating.source == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H = 7.5"


@pytest.mark.parametrize(
    ("word", "severity"), [("MODERATE", Severity.MEDIUM), ("LOW", Severity.LOW)]
)
def test_without_cvss_the_database_severity_decides(word: str, severity: Severity) -> None:
    """GHSA-style advisories carry ``database_specific: {severity: ...}``."""
    assert osv.rate(None, {"severity": word}) == osv.Rated(severity, f"database_specific: {word}")


def test_no_severity_at_all_is_none_for_the_stage_default() -> None:
    assert osv.rate(None, None) == osv.Rated(None, "")
    assert osv.rate([{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}], {}) == (
        osv.Rated(None, "")
    )


@pytest.mark.parametrize(
    "bad",
    ["CVSS:4.0/AV:N/AC:L", "CVSS:4.0/AV:X/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
     "CVSS:3.1/AV:N", "garbage", ""],
)  # fmt: skip
def test_malformed_vector_falls_back_with_a_note(bad: str) -> None:
    """A broken v4 vector: the v3 one decides; nothing else: database severity, then None."""
    v3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    both = osv.rate([{"type": "CVSS_V4", "score": bad}, {"type": "CVSS_V3", "score": v3}], None)
    assert (both.severity, both.source) == (Severity.HIGH, f"{v3} = 7.5")
    assert both.note == f"unreadable severity not used: {bad}"
    alone = osv.rate([{"type": "CVSS_V3", "score": bad}], {"severity": "CRITICAL"})
    assert (alone.severity, alone.note) == (
        Severity.CRITICAL,
        f"unreadable severity not used: {bad}",
    )
    nothing = osv.rate([{"type": "CVSS_V4", "score": bad}], {"severity": "bogus"})
    assert nothing.severity is None
    assert "bogus" in nothing.note


def test_missing_database_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(osv.AdvisoryDbError):
        osv.AdvisoryDb(tmp_path)


def test_audit_separates_withdrawn_and_normalises_names() -> None:
    db = osv.AdvisoryDb(ADVISORY_DB)
    applicable, withdrawn = osv.audit(db, {"Jinja2": "2.10", "redis": "4.5.4"})
    assert {m.advisory.id for m in applicable} >= {"PYSEC-2019-217", "PYSEC-2021-66"}
    assert "PYSEC-2019-220" not in {m.advisory.id for m in applicable}  # fixed in 2.8.1
    assert [m.advisory.id for m in withdrawn] == ["PYSEC-2023-73"]


@pytest.mark.parametrize("spelling", ["jw.util", "jw-util", "JW_Util"])
def test_directory_names_are_normalised_too(spelling: str) -> None:
    """vulns/jw.util/ is found for any PEP 503 spelling of the locked name."""
    applicable, _ = osv.audit(osv.AdvisoryDb(ADVISORY_DB), {spelling: "2.0.1"})
    assert [m.advisory.id for m in applicable] == ["PYSEC-2020-341"]
    assert applicable[0].fix_versions == ("2.3",)


def test_unparsable_listed_version_is_skipped_not_fatal() -> None:
    """PYSEC-2020-341 lists "-class.-jw.util.version.Version-" among its versions."""
    advisory = osv.load_advisory(ADVISORY_DB / "vulns" / "jw.util" / "PYSEC-2020-341.yaml")
    assert "-class.-jw.util.version.Version-" in advisory.affected[0].versions
    assert not osv.is_affected("2.3", advisory.affected[0])
    assert osv.is_affected("1.5a3", advisory.affected[0])


def test_cvss_v4_vector_wins_over_v3() -> None:
    """PYSEC-2026-3804 carries both: v3 says 7.1 (high), v4 says 6.9 (medium); v4 decides."""
    path = ADVISORY_DB / "vulns" / "accelerate" / "PYSEC-2026-3804.yaml"
    advisory = osv.load_advisory(path)
    v3_only = osv.rate(
        [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:H"}], None
    )
    assert v3_only.severity is Severity.HIGH
    assert advisory.severity is Severity.MEDIUM
    assert advisory.rating.source == (
        "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:N/VA:H/SC:N/SI:N/SA:N = 6.9"
    )
    applicable, _ = osv.audit(osv.AdvisoryDb(ADVISORY_DB), {"accelerate": "1.14.0"})
    assert [m.advisory.id for m in applicable] == ["PYSEC-2026-3804"]  # last_affected inclusive
    assert osv.audit(osv.AdvisoryDb(ADVISORY_DB), {"accelerate": "1.14.1"})[0] == []


def _tiny_db(root: Path) -> Path:
    (root / "vulns" / "demo").mkdir(parents=True)
    (root / "vulns" / "demo" / "PYSEC-0-1.yaml").write_text(
        "id: PYSEC-0-1\nmodified: '2023-05-06T00:00:00Z'\naffected:\n"
        "- package: {name: demo, ecosystem: PyPI}\n  versions: ['1.0']\n",
        encoding="utf-8",
    )
    return root


def test_newest_modified_dates_a_copy_without_other_record(tmp_path: Path) -> None:
    assert osv.AdvisoryDb(_tiny_db(tmp_path / "db")).newest_modified() == dt.date(2023, 5, 6)

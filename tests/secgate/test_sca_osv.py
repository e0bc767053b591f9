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


@pytest.mark.parametrize(
    ("vector", "score", "severity"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Severity.CRITICAL),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, Severity.HIGH),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, Severity.MEDIUM),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1, Severity.LOW),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, Severity.INFO),
    ],
)
def test_cvss3_base_score(vector: str, score: float, severity: Severity) -> None:
    assert osv.cvss3_base_score(vector) == score
    assert osv.severity_from_score(score) is severity


def test_advisory_severity_comes_from_its_cvss_vector() -> None:
    advisory = osv.load_advisory(ADVISORY_DB / "vulns" / "werkzeug" / "PYSEC-2023-221.yaml")
    assert advisory.severity is Severity.HIGH  # AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H = 7.5


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


def test_cvss_v4_vector_is_not_scored_the_v3_one_is() -> None:
    """PYSEC-2026-3804 carries both: the v3 vector (7.1, high) decides."""
    path = ADVISORY_DB / "vulns" / "accelerate" / "PYSEC-2026-3804.yaml"
    advisory = osv.load_advisory(path)
    assert osv.cvss3_base_score("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:H") == 7.1
    assert advisory.severity is Severity.HIGH
    applicable, _ = osv.audit(osv.AdvisoryDb(ADVISORY_DB), {"accelerate": "1.14.0"})
    assert [m.advisory.id for m in applicable] == ["PYSEC-2026-3804"]  # last_affected inclusive
    assert osv.audit(osv.AdvisoryDb(ADVISORY_DB), {"accelerate": "1.14.1"})[0] == []


def test_cvss_v4_only_advisory_has_no_computed_severity() -> None:
    """The stage then applies its default (high) instead of a guessed score."""
    v4_only = [
        {
            "type": "CVSS_V4",
            "score": "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:N/VA:H/SC:N/SI:N/SA:N",
        }
    ]
    assert osv._advisory_severity(v4_only) is None


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

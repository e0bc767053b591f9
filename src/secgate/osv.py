"""Offline vulnerability lookup in a local OSV advisory database (PyPA layout).

The PyPA advisory database (https://github.com/pypa/advisory-database) stores
one OSV YAML file per advisory under ``vulns/<package>/``. Reading it from disk
lets the SCA stage run without network access. Where the copy comes from and
how old it is is :mod:`secgate.advisories`' business; the gate fails data older
than the policy allows (:mod:`secgate.freshness`).

Only what the OSV schema says decides whether a version is affected:
``affected[].versions`` (exact list) and ``affected[].ranges[]`` of type
``ECOSYSTEM`` (``introduced`` / ``fixed`` / ``last_affected`` events), compared
with :mod:`packaging.version` (PEP 440), never as strings.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cvss import CVSS3, CVSS4, CVSSError
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from secgate.model import Severity

log = logging.getLogger(__name__)

Event = tuple[str, str]  # ("introduced" | "fixed" | "last_affected", version)


@dataclass(frozen=True)
class AffectedPackage:
    """One ``affected[]`` entry of an advisory, reduced to what we evaluate."""

    name: str  # PEP 503 normalised
    ranges: tuple[tuple[Event, ...], ...]  # ECOSYSTEM ranges only
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Rated:
    """An advisory's severity and where it came from (shown in the finding)."""

    severity: Severity | None  # None: nothing usable, the stage applies its default
    source: str  # "CVSS:4.0/... = 6.9", "database_specific: MODERATE" or ""
    note: str = ""  # why a vector was not used (malformed), for the stage's notes


@dataclass(frozen=True)
class Advisory:
    """One OSV advisory as read from the database."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    details: str
    modified: str
    withdrawn: str | None
    rating: Rated  # from its CVSS v4/v3 vector or database_specific, if any
    affected: tuple[AffectedPackage, ...]
    path: Path

    @property
    def severity(self) -> Severity | None:
        return self.rating.severity


@dataclass(frozen=True)
class Match:
    """An advisory that applies to a locked package version."""

    package: str
    version: str
    advisory: Advisory
    fix_versions: tuple[str, ...]  # fixed versions above the locked one, ascending


class AdvisoryDbError(Exception):
    """The advisory database is missing or unreadable: the stage must not pass."""


# --- version ranges ---------------------------------------------------------


def _parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def in_range(version: Version, events: Iterable[Event]) -> bool:
    """Evaluate one OSV ECOSYSTEM range for ``version`` (the OSV spec algorithm).

    Events are walked in version order: ``introduced`` switches "affected" on
    (``"0"`` means from the beginning), ``fixed`` switches it off at that
    version (the fixed release itself is not affected) and ``last_affected``
    switches it off after that version (it is inclusive). An event version we
    cannot parse makes the range count as affected: fail closed, not open.
    """
    parsed: list[tuple[Version, str]] = []
    for kind, raw in events:
        if kind not in ("introduced", "fixed", "last_affected"):
            continue  # "limit" is for git ranges; nothing else is defined
        value = _parse_version(raw)
        if value is None:
            log.warning("unparsable version %r in OSV range: treating as affected", raw)
            return True
        parsed.append((value, kind))
    affected = False
    for value, kind in sorted(parsed, key=lambda item: item[0]):
        if kind == "introduced" and version >= value:
            affected = True
        elif (kind == "fixed" and version >= value) or (
            kind == "last_affected" and version > value
        ):
            affected = False
    return affected


def is_affected(version: str, entry: AffectedPackage) -> bool:
    """True when ``version`` is in the explicit list or any ECOSYSTEM range."""
    wanted = _parse_version(version)
    if wanted is None:
        # Not PEP 440: only an exact textual match can say anything.
        return version in entry.versions
    listed = (_parse_version(text) for text in entry.versions)
    if any(item is not None and item == wanted for item in listed):
        return True
    return any(in_range(wanted, events) for events in entry.ranges)


def fix_versions(version: str, entry: AffectedPackage) -> tuple[str, ...]:
    """The ``fixed`` versions above ``version``, lowest first (what to upgrade to)."""
    current = _parse_version(version)
    found: set[Version] = set()
    for events in entry.ranges:
        for kind, raw in events:
            value = _parse_version(raw)
            if kind == "fixed" and value is not None and (current is None or value > current):
                found.add(value)
    return tuple(str(item) for item in sorted(found))


# --- CVSS -------------------------------------------------------------------

# Which vector decides, best first: CVSS v4 (the current version), then v3.x.
# Scores come from the ``cvss`` library (Red Hat Product Security), never from
# our own arithmetic: v4 scores are a lookup over macro-vectors, not a formula.
_CVSS_KINDS: tuple[tuple[str, type[Any]], ...] = (("CVSS_V4", CVSS4), ("CVSS_V3", CVSS3))


def severity_from_score(score: float) -> Severity:
    """FIRST's qualitative rating scale, the same for v3 and v4 (None maps to INFO)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFO


def _scored(raw: Any, kind: str, parser: type[Any]) -> tuple[list[tuple[float, str]], list[str]]:
    """(score, vector) of every readable vector of one CVSS type, and the unreadable ones."""
    scored: list[tuple[float, str]] = []
    bad: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping) or item.get("type") != kind:
            continue
        vector = str(item.get("score", ""))
        try:
            scored.append((float(parser(vector).base_score), vector))
        except (CVSSError, ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("unreadable %s vector %r: %s", kind, vector, exc)
            bad.append(vector)
    return scored, bad


def rate(severity: Any, database_specific: Any) -> Rated:
    """Severity from the best CVSS version present, else the database's own word.

    v4 wins over v3 when both are readable; several vectors of one version
    count by the highest. A malformed vector never stops the scan: the next
    source decides and the note says which vector was skipped. Nothing usable
    gives ``None``, and the SCA stage then reports the advisory as high.
    """
    skipped: list[str] = []
    for kind, parser in _CVSS_KINDS:
        scored, bad = _scored(severity, kind, parser)
        skipped.extend(bad)
        if scored:
            score, vector = max(scored)
            return Rated(severity_from_score(score), f"{vector} = {score}", _skip_note(skipped))
    word = database_specific.get("severity") if isinstance(database_specific, Mapping) else None
    if isinstance(word, str):
        try:
            return Rated(Severity.parse(word), f"database_specific: {word}", _skip_note(skipped))
        except KeyError:
            skipped.append(f"database_specific severity {word!r}")
    return Rated(None, "", _skip_note(skipped))


def _skip_note(skipped: list[str]) -> str:
    return f"unreadable severity not used: {', '.join(skipped)}" if skipped else ""


# --- loading ----------------------------------------------------------------


def _affected_entries(raw: Any) -> tuple[AffectedPackage, ...]:
    entries: list[AffectedPackage] = []
    for item in raw or []:
        package = item.get("package") or {}
        if str(package.get("ecosystem", "")) != "PyPI":
            continue
        ranges = tuple(
            tuple(
                (str(kind), str(value))
                for event in rng.get("events") or []
                for kind, value in event.items()
            )
            for rng in item.get("ranges") or []
            if rng.get("type") == "ECOSYSTEM"
        )
        versions = tuple(str(version) for version in item.get("versions") or [])
        entries.append(AffectedPackage(canonicalize_name(str(package["name"])), ranges, versions))
    return tuple(entries)


def load_advisory(path: Path) -> Advisory:
    """Parse one OSV YAML file. Raises AdvisoryDbError on a malformed file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        withdrawn = raw.get("withdrawn")
        return Advisory(
            id=str(raw["id"]),
            aliases=tuple(str(alias) for alias in raw.get("aliases") or []),
            summary=str(raw.get("summary") or ""),
            details=str(raw.get("details") or ""),
            modified=str(raw.get("modified") or ""),
            withdrawn=None if withdrawn is None else str(withdrawn),
            rating=rate(raw.get("severity"), raw.get("database_specific")),
            affected=_affected_entries(raw.get("affected")),
            path=path,
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise AdvisoryDbError(f"unreadable advisory {path}: {exc}") from exc


class AdvisoryDb:
    """A PyPA-layout advisory directory (``<root>/vulns/<package>/*.yaml``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        vulns = root / "vulns"
        if not vulns.is_dir():
            raise AdvisoryDbError(f"no advisory database at {root} (expected {vulns}/)")
        self._dirs: dict[str, list[Path]] = {}
        for package_dir in sorted(vulns.iterdir()):
            if package_dir.is_dir():
                name = canonicalize_name(package_dir.name)
                self._dirs.setdefault(name, []).append(package_dir)
        self.advisory_count = sum(len(self._files(name)) for name in self._dirs)
        if self.advisory_count == 0:
            raise AdvisoryDbError(f"advisory database at {root} holds no advisories")

    def _files(self, package: str) -> list[Path]:
        return sorted(path for d in self._dirs.get(package, []) for path in d.glob("*.yaml"))

    def advisories_for(self, package: str) -> list[Advisory]:
        """Every advisory filed for ``package`` (any spelling), withdrawn ones included."""
        name = canonicalize_name(package)
        return [load_advisory(path) for path in self._files(name)]

    def newest_modified(self) -> dt.date | None:
        """The newest ``modified`` date of any advisory (the data is at least that old)."""
        dates = [_date_of(adv.modified) for name in self._dirs for adv in self.advisories_for(name)]
        known = [date for date in dates if date is not None]
        return max(known) if known else None


def _date_of(timestamp: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(timestamp[:10])
    except ValueError:
        return None


def audit(db: AdvisoryDb, pins: Mapping[str, str]) -> tuple[list[Match], list[Match]]:
    """Match locked ``name -> version`` pins against the database.

    Returns (applicable, withdrawn): withdrawn advisories that would match are
    kept apart so the report can say they were seen and judged not applicable.
    """
    applicable: list[Match] = []
    withdrawn: list[Match] = []
    for package, version in sorted(pins.items()):
        for advisory in db.advisories_for(package):
            entries = [e for e in advisory.affected if e.name == canonicalize_name(package)]
            hits = [e for e in entries if is_affected(version, e)]
            if not hits:
                continue
            fixes = sorted({v for e in hits for v in fix_versions(version, e)}, key=Version)
            match = Match(package, version, advisory, tuple(fixes))
            (withdrawn if advisory.withdrawn else applicable).append(match)
    return applicable, withdrawn

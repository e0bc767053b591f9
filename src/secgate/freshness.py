"""Freshness of advisory data is policy: old data fails the gate like a finding does.

A gate that fails closed when advisory data is missing but passes on data that
is months old gives false assurance: "no known vulnerabilities" then means "none
known on the day the data was taken". So, when the SCA stage ran:

* its data must be at most ``advisory_data.max_age_days`` old
  (``security/policy.yml``; age as defined in :mod:`secgate.advisories`);
* data that has no known date fails;
* older data passes only when an acknowledgement in ``security/waivers.yml``
  (``stale_advisory_data:``) names that data's date, with an owner, a reason and
  an expiry: the same rules as a waiver.

Acknowledgements are checked in every run, like waivers: one that has expired,
or that expires more than :data:`MAX_ACK_DAYS` after the run, fails the gate.
One that matches no data in a run is *not* an error: the air-gapped build
machines need it while CI on GitHub, with current data, does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secgate.model import StageResult
from secgate.waivers import check_entry, entry_date

ACK_KEY = "stale_advisory_data"
MAX_ACK_DAYS = 90
REFRESH_HINT = (
    "refresh it (`make advisories`, online) or accept it for a while with a dated entry "
    f"under {ACK_KEY}: in security/waivers.yml"
)
_REQUIRED = ("data_date", "reason", "owner", "expires")


class AcknowledgementError(ValueError):
    """The acknowledgements in the waivers file cannot be used; the message says which."""


@dataclass(frozen=True)
class Acknowledgement:
    """Stale advisory data accepted for a while: which data, why, who, until when."""

    data_date: dt.date  # the date of the data it accepts, as the report shows it
    reason: str
    owner: str
    expires: dt.date

    def expired(self, today: dt.date) -> bool:
        """Valid up to and including its expiry date, as a waiver is."""
        return today > self.expires


@dataclass(frozen=True)
class Freshness:
    """How old the SCA stage's advisory data was, and whether the gate accepts that."""

    description: str  # what the data is and where its date comes from
    as_of: dt.date | None
    age_days: int | None
    max_age_days: int
    accepted_by: Acknowledgement | None = None
    problem: str | None = None  # why the gate fails on it; None when it does not

    def summary(self) -> str:
        """The one line every report shows on its first screen."""
        if self.as_of is None or self.age_days is None:
            return f"advisory data: {self.description}: NO KNOWN DATE (gate fails)"
        head = (
            f"advisory data: {self.description}; as of {self.as_of}, "
            f"{self.age_days} day{'s' if self.age_days != 1 else ''} old "
            f"(policy: at most {self.max_age_days})"
        )
        if self.accepted_by is not None:
            ack = self.accepted_by
            return f"{head}: STALE, accepted by {ack.owner} until {ack.expires} ({ack.reason})"
        if self.problem is not None:
            return f"{head}: TOO OLD (gate fails)"
        return f"{head}: current"


def check(
    results: Sequence[StageResult],
    max_age_days: int,
    acks: Sequence[Acknowledgement],
    today: dt.date,
) -> Freshness | None:
    """Judge the data of the SCA stage that ran; None when no SCA stage ran."""
    sca = next((r for r in results if r.stage == "sca" and r.ran), None)
    if sca is None:
        return None
    description = sca.metadata.get("advisory_description") or "unknown source"
    as_of = _date(sca.metadata.get("advisory_as_of"))
    data_date = _date(sca.metadata.get("advisory_data_date"))
    if as_of is None:
        problem = f"advisory data has no known date ({description}): {REFRESH_HINT}"
        return Freshness(description, None, None, max_age_days, problem=problem)
    age = (today - as_of).days
    if age <= max_age_days:
        return Freshness(description, as_of, age, max_age_days)
    usable = [a for a in acks if a.data_date == data_date and not a.expired(today)]
    if usable:
        return Freshness(description, as_of, age, max_age_days, accepted_by=usable[0])
    problem = (
        f"advisory data is {age} days old, the policy allows {max_age_days} "
        f"({description}): {REFRESH_HINT}"
    )
    return Freshness(description, as_of, age, max_age_days, problem=problem)


def ack_problems(acks: Sequence[Acknowledgement], today: dt.date) -> list[str]:
    """Acknowledgements that fail the gate whatever data was used (see module docstring)."""
    problems: list[str] = []
    latest = today + dt.timedelta(days=MAX_ACK_DAYS)
    for ack in acks:
        name = f"stale advisory data acknowledgement for {ack.data_date} ({ack.owner})"
        if ack.expired(today):
            problems.append(f"{name} expired on {ack.expires}")
        elif ack.expires > latest:
            problems.append(
                f"{name} expires {ack.expires}, more than {MAX_ACK_DAYS} days ahead: "
                "shorten it so it is looked at again"
            )
    return problems


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def load_acknowledgements(path: Path) -> list[Acknowledgement]:
    """The ``stale_advisory_data:`` list of the waivers file; missing file or key: none."""
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AcknowledgementError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get(ACK_KEY) is None:
        return []
    if not isinstance(data[ACK_KEY], list):
        raise AcknowledgementError(f"{path}: '{ACK_KEY}:' must be a list of entries")
    acks = [_ack(path, n, entry) for n, entry in enumerate(data[ACK_KEY], 1)]
    dates = [a.data_date for a in acks]
    if len(set(dates)) != len(dates):
        raise AcknowledgementError(f"{path}: {ACK_KEY}: a data_date is acknowledged twice")
    return acks


def _ack(path: Path, number: int, entry: Any) -> Acknowledgement:
    where = f"{path}: {ACK_KEY} #{number}"
    check_entry(where, entry, _REQUIRED, (), AcknowledgementError)
    return Acknowledgement(
        data_date=entry_date(where, "data_date", entry["data_date"], AcknowledgementError),
        reason=str(entry["reason"]).strip(),
        owner=str(entry["owner"]).strip(),
        expires=entry_date(where, "expires", entry["expires"], AcknowledgementError),
    )

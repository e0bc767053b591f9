"""Waivers: accepted findings, each with a reason, an owner and an expiry date.

A waiver names one finding by its fingerprint and the stage that reports it.
The gate fails when a waiver has expired (the risk must be looked at again)
or matched nothing in a run of its stage (the finding is gone or its
fingerprint changed: delete or update the waiver), so the file cannot
silently rot. The stage is required because CI runs each stage in its own
job: only the job of the waiver's stage can tell that it matched nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class WaiverError(ValueError):
    """The waivers file cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Waiver:
    """One accepted finding."""

    fingerprint: str
    reason: str
    owner: str
    expires: dt.date
    stage: str  # the "unused" check happens in runs of this stage only
    rule: str | None = None  # for the reader; matching is by fingerprint only
    tool: str | None = None

    def expired(self, today: dt.date) -> bool:
        """A waiver is valid up to and including its expiry date."""
        return today > self.expires


_REQUIRED = ("fingerprint", "stage", "reason", "owner", "expires")
_OPTIONAL = ("rule", "tool")
STAGES = ("sast", "sca", "secrets", "dast", "config")  # secgate.stages.STAGE_NAMES
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def load_waivers(path: Path) -> list[Waiver]:
    """Read waivers.yml (``waivers: [...]``); a missing file means no waivers."""
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise WaiverError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("waivers", []), list):
        raise WaiverError(f"{path}: expected 'waivers:' followed by a list of entries")
    waivers = [_waiver(path, n, entry) for n, entry in enumerate(data.get("waivers") or [], 1)]
    _reject_duplicates(path, waivers)
    return waivers


def _waiver(path: Path, number: int, entry: Any) -> Waiver:
    where = f"{path}: waiver #{number}"
    check_entry(where, entry, _REQUIRED, _OPTIONAL, WaiverError)
    fingerprint = str(entry["fingerprint"]).strip()
    if not _FINGERPRINT.match(fingerprint):
        raise WaiverError(f"{where}: fingerprint must be 64 lowercase hex characters")
    stage = str(entry["stage"]).strip()
    if stage not in STAGES:
        raise WaiverError(f"{where}: stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return Waiver(
        fingerprint=fingerprint,
        reason=str(entry["reason"]).strip(),
        owner=str(entry["owner"]).strip(),
        expires=entry_date(where, "expires", entry["expires"], WaiverError),
        stage=stage,
        rule=_optional(entry, "rule"),
        tool=_optional(entry, "tool"),
    )


def check_entry(
    where: str,
    entry: Any,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    error: type[ValueError],
) -> None:
    """Raise ``error`` unless ``entry`` is a mapping with every required key and no unknown one.

    Shared by waivers and advisory-data acknowledgements, which follow the same rules.
    """
    if not isinstance(entry, dict):
        raise error(f"{where}: expected a mapping with {', '.join(required)}")
    missing = [key for key in required if not entry.get(key)]
    if missing:
        raise error(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(set(entry) - set(required) - set(optional))
    if unknown:
        raise error(f"{where}: unknown keys {', '.join(unknown)}")


def entry_date(where: str, key: str, value: Any, error: type[ValueError]) -> dt.date:
    """A date field of an entry; ``error`` names the field when it is not a date."""
    # YAML already turns an unquoted 2026-12-31 into a date; accept the quoted form too.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise error(f"{where}: {key} must be a date like 2026-12-31, got {value!r}") from exc


def _optional(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return str(value).strip() if value else None


def _reject_duplicates(path: Path, waivers: list[Waiver]) -> None:
    seen: set[str] = set()
    for waiver in waivers:
        if waiver.fingerprint in seen:
            raise WaiverError(f"{path}: fingerprint {waiver.fingerprint} is waived twice")
        seen.add(waiver.fingerprint)

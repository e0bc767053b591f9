"""The one clock and the one timestamp format of eventsvc.

Every timestamp the service handles is UTC. Two things about them are easy to
get subtly wrong when each module has its own copy, so they live here once:

- **Precision.** A BSON date holds milliseconds. A value that is stored must
  be truncated first (:func:`truncate_to_ms`), or the value a caller keeps
  differs from the one read back. A value that is only compared or shown
  needs no truncation, so :func:`utc_now` does not truncate.
- **Wire format.** RFC 3339 in UTC with milliseconds and ``Z``
  (:func:`rfc3339`): what the API returns and what the audit hashes commit to.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, at full (microsecond) precision."""
    return datetime.now(UTC)


def truncate_to_ms(moment: datetime) -> datetime:
    """Drop sub-millisecond digits, which a BSON date would drop anyway."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123Z``: UTC, milliseconds, ``Z``.

    A naive datetime is taken as UTC, which is what pymongo returns for a
    BSON date (``tz_aware=False``); an aware one is converted to UTC.
    Sub-millisecond digits are cut, not rounded, as in :func:`truncate_to_ms`.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

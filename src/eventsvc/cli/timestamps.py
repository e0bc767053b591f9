"""Timestamps typed by a user, turned into what the API accepts.

The API takes RFC 3339 in UTC with a ``Z``. Users may type any RFC 3339
offset (converted to UTC here) or ``now``. A timestamp without an offset is
refused: guessing the local zone would silently shift events by hours.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import click

from eventsvc.clock import rfc3339, utc_now

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)


def parse_timestamp(text: str, now: Callable[[], datetime] = utc_now) -> datetime:
    """Parse ``now`` or an RFC 3339 timestamp with an offset; return it in UTC."""
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return now().astimezone(UTC)
    match = _RFC3339.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp (e.g. 2026-11-26T01:00:00Z)")
    if match.group("offset") is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z or an offset such as +02:00")
    try:
        parsed = datetime.fromisoformat(cleaned.upper())
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date and time") from None
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format as the API expects: :func:`~eventsvc.clock.rfc3339`, minus ``.000`` for whole seconds.

    The API accepts both ``2026-11-26T01:00:00Z`` and ``...00.000Z``; the
    CLI has always sent the short form, and still does.
    """
    text = rfc3339(moment)
    if text.endswith(".000Z"):
        return text.removesuffix(".000Z") + "Z"
    return text


class TimestampParam(click.ParamType[str]):
    """A click parameter that yields an API-ready UTC timestamp string."""

    name = "timestamp"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        """Return the value formatted for the API; a bad value is a usage error (exit 2)."""
        try:
            return format_timestamp(parse_timestamp(str(value)))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)

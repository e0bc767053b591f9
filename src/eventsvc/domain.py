"""What a valid event is, independent of HTTP and MongoDB.

An event has a ``start_event`` and, once stopped, a ``stop_event`` that is never
before the start. Timestamps are always timezone-aware UTC, truncated to the
millisecond because that is what a BSON date holds: a value read back from the
database is equal to the value written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from eventsvc.clock import truncate_to_ms

# BSON dates hold milliseconds; we also refuse absurd values so a typo such as
# year 20026 is a clear 400, not a silently stored event.
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)

NAME_MAX_LENGTH = 200
ATTRIBUTES_MAX_COUNT = 32
ATTRIBUTE_KEY_MAX_LENGTH = 64
ATTRIBUTE_VALUE_MAX_LENGTH = 512
MAX_BATCH_EVENTS = 100  # events in one POST /api/v1/events:batch (one transaction)

# Attribute keys become MongoDB field names (``attributes.<key>``): no leading
# ``$`` (operators), no ``.`` (paths), no NUL. We go further and allow a plain
# identifier alphabet only, which also keeps keys safe in logs and headers.
ATTRIBUTE_KEY_PATTERN = re.compile(
    rf"^[A-Za-z0-9_][A-Za-z0-9_-]{{0,{ATTRIBUTE_KEY_MAX_LENGTH - 1}}}$"
)
# Control characters (C0, DEL, C1) and whitespace, spelled out so the same
# classes work in Python and in the OpenAPI document's ECMA-262 patterns:
# what the schema promises is exactly what the service accepts.
CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f"
WHITESPACE_CLASS = r" \t\n\v\f\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# 1+ characters, no control character, not only whitespace.
NAME_PATTERN = f"^[^{CONTROL_CLASS}]*[^{WHITESPACE_CLASS}{CONTROL_CLASS}][^{CONTROL_CLASS}]*$"
ATTRIBUTE_VALUE_PATTERN = f"^[^{CONTROL_CLASS}]*$"
_CONTROL_CHARACTERS = re.compile(f"[{CONTROL_CLASS}]")
_VISIBLE_CHARACTER = re.compile(f"[^{WHITESPACE_CLASS}{CONTROL_CLASS}]")


class DomainError(Exception):
    """Base class for broken business rules; the API maps each to a status."""


class EventNotFound(DomainError):
    """No event has this id (or it was deleted)."""


class EventAlreadyStopped(DomainError):
    """The event has a stop_event and the request did not prove it saw it."""


class VersionMismatch(DomainError):
    """``If-Match`` named a version that is no longer current."""


class StopBeforeStart(DomainError):
    """A stop_event earlier than the event's start_event."""


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key was sent with a different request body."""


class IdempotentResultGone(DomainError):
    """A retried create whose first result (the event) has since been deleted."""


class InvalidTimestamp(ValueError):
    """A timestamp that is naive, not UTC, or out of the accepted range."""


@dataclass(frozen=True)
class RequestContext:
    """Who asked for a change, from where: what the audit trail records with it.

    ``actor`` is ``token:<id>`` (plus `` cert:<subject>`` over mutual TLS) or
    ``anonymous``; never a secret. ``request_id`` is always minted by us;
    what the caller sent (``X-Request-Id``, ``traceparent``) is kept apart in
    the ``client_*`` fields, so nobody can pass their id off as ours.
    ``trace_id`` continues the caller's trace when a ``traceparent`` came in.
    """

    actor: str
    client_address: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    client_request_id: str | None = None
    client_traceparent: str | None = None


SYSTEM_CONTEXT = RequestContext(actor="anonymous")


@dataclass(frozen=True)
class Event:
    """One event as the service sees it."""

    id: str
    name: str
    start_event: datetime
    stop_event: datetime | None
    attributes: dict[str, str] = field(default_factory=dict)
    created_at: datetime = EARLIEST_TIMESTAMP
    updated_at: datetime = EARLIEST_TIMESTAMP
    version: int = 1

    @property
    def is_stopped(self) -> bool:
        return self.stop_event is not None

    @property
    def etag(self) -> str:
        """Strong entity tag: changes whenever the stored document changes."""
        return f'"{self.id}.{self.version}"'


def check_timestamp(moment: datetime) -> datetime:
    """Return ``moment`` in UTC at millisecond precision, or raise InvalidTimestamp.

    Only UTC is accepted (``Z`` or ``+00:00``): a client sending local time
    with an offset almost always has a clock or conversion bug we would rather
    surface than store.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidTimestamp("timestamp must include a UTC offset (use 'Z')")
    if offset != timedelta(0):
        raise InvalidTimestamp("timestamp must be in UTC (use 'Z' or '+00:00')")
    normalised = truncate_to_ms(moment.astimezone(UTC))
    if not EARLIEST_TIMESTAMP <= normalised < LATEST_TIMESTAMP:
        raise InvalidTimestamp(
            f"timestamp must be between {EARLIEST_TIMESTAMP:%Y-%m-%d} "
            f"and {LATEST_TIMESTAMP:%Y-%m-%d}"
        )
    return normalised


def check_name(name: str) -> str:
    """A name is 1..200 characters, no control character, not only whitespace.

    It is stored exactly as sent (no trimming): what a client reads back is
    what it wrote.
    """
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"name must be at most {NAME_MAX_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(name):
        raise ValueError("name must not contain control characters")
    if not _VISIBLE_CHARACTER.search(name):
        raise ValueError("name must not be empty or only whitespace")
    return name


def check_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """Bound the attribute map and keep its keys safe as MongoDB field names."""
    if len(attributes) > ATTRIBUTES_MAX_COUNT:
        raise ValueError(f"at most {ATTRIBUTES_MAX_COUNT} attributes are allowed")
    for key, value in attributes.items():
        if not ATTRIBUTE_KEY_PATTERN.match(key):
            raise ValueError(
                f"attribute keys are 1-{ATTRIBUTE_KEY_MAX_LENGTH} characters of letters, "
                "digits, '_' or '-' and cannot start with '-' (no '$' or '.')"
            )
        if len(value) > ATTRIBUTE_VALUE_MAX_LENGTH:
            raise ValueError(
                f"attribute values must be at most {ATTRIBUTE_VALUE_MAX_LENGTH} characters"
            )
        if _CONTROL_CHARACTERS.search(value):
            raise ValueError("attribute values must not contain control characters")
    return dict(attributes)


def check_stop(event: Event, stop_event: datetime, *, if_match: str | None) -> None:
    """Decide whether ``event`` may be given ``stop_event``.

    Stopping an open event needs nothing more. Changing the stop of an event
    that is already stopped needs ``If-Match`` with the current ETag, so a
    client cannot overwrite a stop it has not seen (lost update).
    """
    if if_match is not None and if_match != event.etag:
        raise VersionMismatch(f"If-Match {if_match} does not match the current ETag")
    if event.is_stopped and if_match is None:
        raise EventAlreadyStopped(
            f"event {event.id} is already stopped; send If-Match with its ETag to change it"
        )
    if stop_event < event.start_event:
        raise StopBeforeStart("stop_event must not be before start_event")

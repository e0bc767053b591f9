"""Timestamps typed by users: offsets become UTC, naive times are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsvc.cli.timestamps import format_timestamp, parse_timestamp

PINNED = datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T01:00:00Z", "2026-11-26T01:00:00Z"),
        ("2026-11-26t01:00:00z", "2026-11-26T01:00:00Z"),
        ("2026-11-26 01:00:00Z", "2026-11-26T01:00:00Z"),
        ("2026-11-26T02:30:00+01:30", "2026-11-26T01:00:00Z"),
        ("2026-11-25T20:00:00-05:00", "2026-11-26T01:00:00Z"),
        ("2026-11-26T01:00:00.5Z", "2026-11-26T01:00:00.500Z"),
        ("2026-11-26T01:00:00.123456+00:00", "2026-11-26T01:00:00.123Z"),
        ("now", "2026-11-26T01:02:03.456Z"),
        (" NOW ", "2026-11-26T01:02:03.456Z"),
    ],
)
def test_accepted(text: str, expected: str) -> None:
    assert format_timestamp(parse_timestamp(text, now=lambda: PINNED)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-26T01:00:00", "no UTC offset"),
        ("2026-11-26", "not an RFC 3339"),
        ("20261126T010000Z", "not an RFC 3339"),
        ("yesterday", "not an RFC 3339"),
        ("2026-13-01T00:00:00Z", "not a valid date"),
        ("2026-11-26T01:00:00+25:00", "not a valid date"),
        ("", "not an RFC 3339"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timestamp(text)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2999, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_format_then_parse_is_the_same_instant_at_millisecond_precision(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert text.endswith("Z")
    parsed = parse_timestamp(text)
    expected = moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parsed == expected

"""Domain rules and request validators, including property-based tests."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from eventsvc.api.schemas import EventCreate, EventListQuery
from eventsvc.clock import rfc3339
from eventsvc.domain import (
    ATTRIBUTE_KEY_PATTERN,
    ATTRIBUTE_VALUE_PATTERN,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    NAME_PATTERN,
    Event,
    EventAlreadyStopped,
    InvalidTimestamp,
    StopBeforeStart,
    VersionMismatch,
    check_stop,
    check_timestamp,
)
from eventsvc.store import InvalidCursor, decode_cursor, encode_cursor

START = datetime(2026, 1, 1, tzinfo=UTC)


def event(stop: datetime | None = None, version: int = 1) -> Event:
    return Event(id="a" * 24, name="n", start_event=START, stop_event=stop, version=version)


def test_stop_an_open_event() -> None:
    check_stop(event(), START + timedelta(hours=1), if_match=None)
    check_stop(event(), START, if_match=None)  # equal is allowed


def test_stop_before_start_is_refused() -> None:
    with pytest.raises(StopBeforeStart):
        check_stop(event(), START - timedelta(milliseconds=1), if_match=None)


def test_restopping_needs_the_current_etag() -> None:
    stopped = event(stop=START, version=2)
    with pytest.raises(EventAlreadyStopped):
        check_stop(stopped, START, if_match=None)
    with pytest.raises(VersionMismatch):
        check_stop(stopped, START, if_match=event().etag)
    check_stop(stopped, START, if_match=stopped.etag)


def test_timestamps_must_be_utc_and_in_range() -> None:
    with pytest.raises(InvalidTimestamp):
        check_timestamp(datetime(2026, 1, 1))  # naive
    with pytest.raises(InvalidTimestamp):
        check_timestamp(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    with pytest.raises(InvalidTimestamp):
        check_timestamp(LATEST_TIMESTAMP)
    assert check_timestamp(EARLIEST_TIMESTAMP) == EARLIEST_TIMESTAMP


utc_moments = st.datetimes(
    min_value=EARLIEST_TIMESTAMP.replace(tzinfo=None),
    max_value=LATEST_TIMESTAMP.replace(tzinfo=None) - timedelta(milliseconds=1),
    timezones=st.just(UTC),
)


@given(utc_moments)
def test_any_valid_timestamp_round_trips_through_the_wire_format(moment: datetime) -> None:
    parsed = EventCreate.model_validate({"name": "x", "start_event": rfc3339(moment)})
    assert parsed.start_event == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@given(st.dictionaries(st.text(max_size=70), st.text(max_size=600), max_size=40))
def test_attributes_are_either_rejected_or_safe_field_names(attributes: dict[str, str]) -> None:
    try:
        parsed = EventCreate.model_validate({"name": "x", "attributes": attributes})
    except ValidationError:
        return
    for key, value in parsed.attributes.items():
        assert not key.startswith("$")
        assert "." not in key
        assert "\x00" not in key
        assert len(value) <= 512
    assert len(parsed.attributes) <= 32


@given(
    st.one_of(
        st.integers(),
        st.floats(),
        st.booleans(),
        st.none(),
        st.lists(st.text()),
        st.dictionaries(st.text(), st.text()),
    )
)
def test_name_must_be_a_string(value: object) -> None:
    with pytest.raises(ValidationError):
        EventCreate.model_validate({"name": value})


@given(st.text(max_size=300))
def test_name_validation_is_exactly_the_documented_pattern(name: str) -> None:
    """The OpenAPI pattern and the validator agree: schemathesis relies on it."""
    documented = len(name) <= 200 and re.fullmatch(NAME_PATTERN, name) is not None
    try:
        parsed = EventCreate.model_validate({"name": name})
    except ValidationError:
        accepted = False
    else:
        accepted = True
        assert parsed.name == name  # stored exactly as sent
    assert accepted == documented


@given(st.dictionaries(st.text(max_size=70), st.text(max_size=600), max_size=40))
def test_attribute_validation_is_exactly_the_documented_schema(
    attributes: dict[str, str],
) -> None:
    documented = len(attributes) <= 32 and all(
        re.fullmatch(ATTRIBUTE_KEY_PATTERN.pattern, key)
        and len(value) <= 512
        and re.fullmatch(ATTRIBUTE_VALUE_PATTERN, value)
        for key, value in attributes.items()
    )
    try:
        EventCreate.model_validate({"name": "x", "attributes": attributes})
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == documented


@given(utc_moments, st.from_regex(r"[0-9a-f]{24}", fullmatch=True))
def test_cursor_round_trip(moment: datetime, event_id: str) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    decoded_start, decoded_id = decode_cursor(encode_cursor(moment, event_id))
    assert decoded_start == moment
    assert str(decoded_id) == event_id


@given(st.text(max_size=80))
def test_arbitrary_cursor_text_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidCursor):
        decode_cursor(text)


def test_list_query_rejects_operator_shaped_parameters() -> None:
    with pytest.raises(ValidationError):
        EventListQuery.model_validate({"name[$ne]": "x"})
    with pytest.raises(ValidationError):
        EventListQuery.model_validate({"status": "all"})

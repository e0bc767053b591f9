"""Domain rules and request validators, including property-based tests."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from eventsvc.api.schemas import EventBatch, EventCreate, EventListQuery
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
    RequestContext,
    StopBeforeStart,
    VersionMismatch,
    check_attributes,
    check_name,
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


# --- exact bounds, stated as literals (the constants are what a mutant changes) ---------


def test_the_accepted_range_is_1970_up_to_the_end_of_2099() -> None:
    ms = timedelta(milliseconds=1)
    first, end = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    assert check_timestamp(first) == first
    assert check_timestamp(end - ms) == end - ms
    for outside in (
        datetime(1, 1, 1, tzinfo=UTC),
        first - ms,
        end,
        end + ms,
        datetime.max.replace(tzinfo=UTC),
    ):
        with pytest.raises(InvalidTimestamp, match="between 1970-01-01 and 2100-01-01"):
            check_timestamp(outside)


@pytest.mark.parametrize("hours", [-5, 1])
def test_an_offset_east_or_west_of_utc_is_refused(hours: int) -> None:
    with pytest.raises(InvalidTimestamp, match="must be in UTC"):
        check_timestamp(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=hours))))


def test_a_name_holds_at_most_200_characters() -> None:
    assert check_name("n" * 200) == "n" * 200
    with pytest.raises(ValueError, match="at most 200 characters"):
        check_name("n" * 201)


def test_at_most_32_attributes_with_keys_up_to_64_and_values_up_to_512_characters() -> None:
    most = {f"k{index}": "v" * 512 for index in range(31)} | {"k" * 64: "v"}
    assert check_attributes(most) == most
    with pytest.raises(ValueError, match="at most 32 attributes"):
        check_attributes(most | {"one-too-many": "v"})
    with pytest.raises(ValueError, match="attribute keys are 1-64 characters"):
        check_attributes({"k" * 65: "v"})
    with pytest.raises(ValueError, match="at most 512 characters"):
        check_attributes({"key": "v" * 513})


@pytest.mark.parametrize("key", ["$where", "a.b", "-a", "", "a\x00"])
def test_every_attribute_key_is_checked_not_only_the_first(key: str) -> None:
    """A MongoDB operator or path hidden behind a valid first key is still refused."""
    with pytest.raises(ValueError, match="attribute keys"):
        check_attributes({"valid": "v", key: "v"})


def test_every_attribute_value_is_checked_for_control_characters() -> None:
    with pytest.raises(ValueError, match="control characters"):
        check_attributes({"valid": "v", "other": "line\nbreak"})


def test_a_batch_holds_1_to_100_events() -> None:
    item = {"name": "n"}
    assert len(EventBatch.model_validate({"events": [item] * 100}).events) == 100
    for count in (0, 101):
        with pytest.raises(ValidationError):
            EventBatch.model_validate({"events": [item] * count})


@pytest.mark.parametrize("other_version", [1, 3, 10])
def test_if_match_with_any_other_version_is_refused(other_version: int) -> None:
    """Older or newer, and whatever the ETags' sort order ('"a.10"' < '"a.2"')."""
    stopped = event(stop=START, version=2)
    with pytest.raises(VersionMismatch):
        check_stop(stopped, START, if_match=event(version=other_version).etag)


def test_events_and_request_contexts_cannot_be_changed_once_built() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event().stop_event = START  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RequestContext(actor="token:abc").actor = "anonymous"  # type: ignore[misc]

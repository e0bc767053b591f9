"""Request and response shapes. They generate the OpenAPI document too.

Every model forbids unknown fields and coerces nothing (strict types), so a
value the service stores is exactly a value the client sent on purpose.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from eventsvc.clock import rfc3339
from eventsvc.domain import (
    ATTRIBUTE_KEY_PATTERN,
    ATTRIBUTE_VALUE_MAX_LENGTH,
    ATTRIBUTE_VALUE_PATTERN,
    ATTRIBUTES_MAX_COUNT,
    MAX_BATCH_EVENTS,
    NAME_PATTERN,
    Event,
    check_attributes,
    check_name,
    check_timestamp,
)

EVENT_ID_PATTERN = r"^[0-9a-f]{24}$"
# Timestamps as the OpenAPI document describes them, and exactly what the
# parser accepts: RFC 3339 in UTC ('Z' or '+00:00'), years 1970-2099.
TIMESTAMP_PATTERN = (
    r"^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|\+00:00)$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_-]{8,128}$"


def _parse_rfc3339(value: Any) -> datetime:
    """Accept only an RFC 3339 string; numbers and other formats are errors."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError("must be an RFC 3339 UTC timestamp such as 2026-01-31T12:00:00Z")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _timestamp_rule(value: datetime) -> datetime:
    return check_timestamp(value)


Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_rfc3339),
    AfterValidator(_timestamp_rule),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIMESTAMP_PATTERN,
            "description": "RFC 3339 in UTC, between 1970 and 2099.",
            "examples": ["2026-01-31T12:00:00Z"],
        }
    ),
]
Name = Annotated[
    str,
    Field(min_length=1, max_length=200),
    AfterValidator(check_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200, "pattern": NAME_PATTERN}),
]
Attributes = Annotated[
    dict[str, str],
    AfterValidator(check_attributes),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": ATTRIBUTES_MAX_COUNT,
            "propertyNames": {"pattern": ATTRIBUTE_KEY_PATTERN.pattern},
            "additionalProperties": {
                "type": "string",
                "maxLength": ATTRIBUTE_VALUE_MAX_LENGTH,
                "pattern": ATTRIBUTE_VALUE_PATTERN,
            },
        }
    ),
]


class ParameterModel(BaseModel):
    """Query or header parameters, whose JSON schema is built once, at import.

    flask-openapi3 calls ``model_json_schema()`` on a route's query and header
    models on *every* request, to see which fields are lists; pydantic builds
    that schema from scratch each time (about a tenth of a list request in a
    py-spy profile). The schema depends only on the class, so the plain call
    (no arguments, what flask-openapi3 makes) is answered from a copy made
    when the class is defined; calls with arguments (the OpenAPI document)
    go to pydantic as before. A deep copy is handed out, so a caller that
    changes it cannot change what the next request sees.
    """

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _PARAMETER_SCHEMAS[cls] = super().model_json_schema()

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The schema pydantic would build; the argument-less call from a precomputed copy."""
        cached = None if args or kwargs else _PARAMETER_SCHEMAS.get(cls)
        if cached is None:
            return super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(cached)


_PARAMETER_SCHEMAS: dict[type[ParameterModel], dict[str, Any]] = {}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    """A response shape: ``additionalProperties: false`` in the OpenAPI document.

    A field the document does not name is then a schema violation that DAST
    (schemathesis' response conformance) reports: a leaked field is a finding.
    """

    model_config = ConfigDict(extra="forbid")


class EventCreate(StrictModel):
    """Body of ``POST /api/v1/events``."""

    name: Name
    start_event: Timestamp | None = Field(default=None, description="Defaults to now.")
    attributes: Attributes = Field(default_factory=dict, description="At most 32 string pairs.")


class EventBatchItem(StrictModel):
    """One event of ``POST /api/v1/events:batch``: a create, with its own idempotency key."""

    name: Name
    start_event: Timestamp | None = Field(default=None, description="Defaults to now.")
    attributes: Attributes = Field(default_factory=dict, description="At most 32 string pairs.")
    idempotency_key: str | None = Field(
        default=None,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Sending this item again with the same key returns its first result.",
    )


class EventBatch(StrictModel):
    """Body of ``POST /api/v1/events:batch``: 1 to ``maxItems`` events, created together."""

    events: list[EventBatchItem] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class EventStop(StrictModel):
    """Body of ``PATCH /api/v1/events/{event_id}``: sets stop_event."""

    stop_event: Timestamp | None = Field(default=None, description="Defaults to now.")


class EventPath(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(pattern=EVENT_ID_PATTERN, description="24 hex characters.")


class EventListQuery(ParameterModel):
    """Query of ``GET /api/v1/events``; parameters arrive as strings."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start_from: Timestamp | None = Field(
        default=None, alias="from", description="start_event >= from"
    )
    start_to: Timestamp | None = Field(default=None, alias="to", description="start_event < to")
    name: Name | None = None
    status: Literal["open", "stopped"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=512, pattern=r"^[A-Za-z0-9_-]+$")


class CreateHeaders(ParameterModel):
    """Headers read by create; others pass through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retrying with the same key returns the first result.",
    )


class StopHeaders(ParameterModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    if_match: str | None = Field(
        default=None,
        alias="If-Match",
        max_length=128,
        description="Current ETag; required to change an already set stop_event.",
    )


class EventOut(ResponseModel):
    """An event as returned by the API."""

    id: str
    name: str
    start_event: datetime
    stop_event: datetime | None
    attributes: dict[str, str]
    created_at: datetime
    updated_at: datetime
    version: int


class BatchItemOut(ResponseModel):
    status: Literal[200, 201] = Field(description="201 created; 200 replayed (key used before).")
    event: EventOut


class BatchOut(ResponseModel):
    items: list[BatchItemOut] = Field(description="One result per event, in request order.")


class EventPageOut(ResponseModel):
    items: list[EventOut]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")


class FieldError(ResponseModel):
    field: str
    message: str


class Problem(ResponseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
    request_id: str | None = None


class Health(ResponseModel):
    status: str = Field(
        description=(
            '"ok"; "degraded" (200: Vault unreachable, serving on current credentials); '
            '"unavailable" (503)'
        )
    )
    checks: dict[str, str] = Field(
        default_factory=dict, description="mongodb, certificates, vault (with Vault only)"
    )


def event_json(event: Event) -> dict[str, Any]:
    """The wire form of an event."""
    return {
        "id": event.id,
        "name": event.name,
        "start_event": rfc3339(event.start_event),
        "stop_event": None if event.stop_event is None else rfc3339(event.stop_event),
        "attributes": event.attributes,
        "created_at": rfc3339(event.created_at),
        "updated_at": rfc3339(event.updated_at),
        "version": event.version,
    }


# Every API route can answer these (auth, limits, body checks, database outage).
ERROR_RESPONSES: dict[str | int, type[BaseModel] | dict[Any, Any] | None] = {
    400: Problem,
    401: Problem,
    403: Problem,
    413: Problem,
    # 414 and 431 come from gunicorn's limits, before the app runs (api/refusals.py).
    414: Problem,
    415: Problem,
    429: Problem,
    431: Problem,
    503: Problem,
}

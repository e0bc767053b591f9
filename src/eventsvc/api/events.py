"""The events resource: create, list, read, stop, delete."""

from __future__ import annotations

from flask import Response, json, url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from eventsvc.api.schemas import (
    ERROR_RESPONSES,
    BatchOut,
    CreateHeaders,
    EventBatch,
    EventCreate,
    EventListQuery,
    EventOut,
    EventPageOut,
    EventPath,
    EventStop,
    Problem,
    StopHeaders,
    event_json,
)
from eventsvc.api.services import event_store
from eventsvc.auth import request_context, require_scope
from eventsvc.clock import utc_now
from eventsvc.domain import Event
from eventsvc.store import BatchItem, EventFilter, NewEvent

events_tag = Tag(name="events", description="Events with a start and a stop timestamp")
blueprint = APIBlueprint(
    "events",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[events_tag],
    abp_security=[{"bearerAuth": []}],
    abp_responses=ERROR_RESPONSES,
)


def _event_response(event: Event, status: int = 200) -> Response:
    response = Response(json.dumps(event_json(event)), status=status, mimetype="application/json")
    response.headers["ETag"] = event.etag
    return response


@blueprint.post(
    "/events",
    responses={201: EventOut, 409: Problem, 422: Problem},
    summary="Create an event",
)
@require_scope("events:write")
def create_event(body: EventCreate, header: CreateHeaders) -> Response:
    """Create an event; ``start_event`` defaults to now.

    With ``Idempotency-Key``, a retry returns the first result (same status,
    body and Location) and the header ``Idempotent-Replayed: true``.
    """
    new_event = NewEvent(
        name=body.name,
        start_event=body.start_event,
        attributes=body.attributes,
    )
    result = event_store().create(new_event, request_context(), header.idempotency_key)
    response = _event_response(result.event, status=201)
    response.headers["Location"] = url_for(".get_event", event_id=result.event.id)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.post(
    "/events:batch",
    responses={200: BatchOut, 409: Problem, 422: Problem},
    summary="Create up to 100 events in one transaction",
)
@require_scope("events:write")
def create_events_batch(body: EventBatch) -> Response:
    """Create each event of ``events`` with its own audit record, all or nothing.

    The response lists one result per event, in request order: ``status``
    201 for a new event, 200 when its ``idempotency_key`` was used before by
    this token (the first result, replayed). A body that does not validate,
    or more than 100 events, is refused with 422 and nothing is written; so
    is a key reused for a different event.
    """
    items = [
        BatchItem(NewEvent(item.name, item.start_event, item.attributes), item.idempotency_key)
        for item in body.events
    ]
    results = event_store().create_many(items, request_context())
    out = {
        "items": [
            {"status": 200 if result.replayed else 201, "event": event_json(result.event)}
            for result in results
        ]
    }
    return Response(json.dumps(out), status=200, mimetype="application/json")


@blueprint.get(
    "/events",
    responses={
        200: EventPageOut,
    },
    summary="List events",
)
@require_scope("events:read")
def list_events(query: EventListQuery) -> Response:
    """Events newest first by ``start_event``; follow ``next`` for more."""
    event_filter = EventFilter(
        start_from=query.start_from,
        start_to=query.start_to,
        name=query.name,
        status=query.status,
    )
    page = event_store().list(event_filter, query.limit, query.cursor)
    body = {"items": [event_json(event) for event in page.events], "next": page.next_cursor}
    return Response(json.dumps(body), mimetype="application/json")


@blueprint.get(
    "/events/<event_id>",
    responses={
        200: EventOut,
        404: Problem,
    },
    summary="Read an event",
)
@require_scope("events:read")
def get_event(path: EventPath) -> Response:
    return _event_response(event_store().get(path.event_id))


@blueprint.patch(
    "/events/<event_id>",
    responses={
        200: EventOut,
        404: Problem,
        409: Problem,
        412: Problem,
    },
    summary="Set stop_event",
)
@require_scope("events:write")
def stop_event(path: EventPath, body: EventStop, header: StopHeaders) -> Response:
    """Set ``stop_event`` (default now); it must not be before ``start_event``.

    An event that is already stopped answers 409 unless ``If-Match`` carries
    its current ETag; a stale ETag answers 412.
    """
    event = event_store().stop(
        path.event_id, body.stop_event or utc_now(), request_context(), if_match=header.if_match
    )
    return _event_response(event)


@blueprint.delete(
    "/events/<event_id>",
    responses={
        204: None,
        404: Problem,
    },
    summary="Delete an event",
)
@require_scope("events:admin")
def delete_event(path: EventPath) -> Response:
    event_store().delete(path.event_id, request_context())
    return Response(status=204)

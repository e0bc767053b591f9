"""The audit trail for auditors: records and checkpoints as JSON lines (``audit:read``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response, stream_with_context
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import ConfigDict, Field

from eventsvc.api.schemas import ERROR_RESPONSES, ParameterModel, Timestamp
from eventsvc.api.services import event_store
from eventsvc.audit.export import export
from eventsvc.auth import require_scope

audit_tag = Tag(name="audit", description="Tamper-evident audit trail (audit:read)")
blueprint = APIBlueprint(
    "audit",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[audit_tag],
    abp_security=[{"bearerAuth": []}],
    abp_responses=ERROR_RESPONSES,
)


class AuditQuery(ParameterModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: Timestamp | None = Field(default=None, alias="from", description="time >= from")
    end: Timestamp | None = Field(default=None, alias="to", description="time < to")


@blueprint.get(
    "/audit",
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
    summary="Export audit records with their proof material",
)
@require_scope("audit:read")
def export_audit(query: AuditQuery) -> Response:
    """One JSON object per line: records (chain, sequence, prev_hash, hash), then checkpoints.

    With the audit key, an auditor re-verifies the lines offline (see
    eventsvc.audit.record's module documentation, or ``eventsvc audit verify``).
    """
    lines = export(event_store().database, query.start, query.end)

    def ndjson() -> Iterator[str]:
        for line in lines:
            yield json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n"

    return Response(stream_with_context(ndjson()), mimetype="application/x-ndjson")

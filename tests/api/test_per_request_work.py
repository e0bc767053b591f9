"""Work that belongs at start-up is not done again on every request."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from eventsvc.api.audit import AuditQuery
from eventsvc.api.schemas import CreateHeaders, EventListQuery, ParameterModel, StopHeaders

PARAMETER_MODELS = (EventListQuery, CreateHeaders, StopHeaders, AuditQuery)


@pytest.mark.parametrize("model", PARAMETER_MODELS, ids=lambda model: model.__name__)
def test_a_precomputed_parameter_schema_is_what_pydantic_builds(
    model: type[ParameterModel],
) -> None:
    fresh = BaseModel.model_json_schema.__func__(model)  # type: ignore[attr-defined]
    assert model.model_json_schema() == fresh
    # With arguments (the OpenAPI document's call), pydantic answers as before.
    assert model.model_json_schema(mode="serialization") == BaseModel.model_json_schema.__func__(  # type: ignore[attr-defined]
        model, mode="serialization"
    )


def test_a_caller_cannot_change_the_schema_the_next_request_sees() -> None:
    first = EventListQuery.model_json_schema()
    first["properties"]["limit"]["type"] = "array"
    first["properties"].clear()
    assert EventListQuery.model_json_schema()["properties"]["limit"]["type"] == "integer"


def test_requests_build_no_json_schema(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list, a create and a stop (query and header models) generate no schema at all."""
    generated: list[Any] = []
    original = GenerateJsonSchema.generate

    def counting(self: GenerateJsonSchema, *args: Any, **kwargs: Any) -> Any:
        generated.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GenerateJsonSchema, "generate", counting)
    created = client.post(
        "/api/v1/events", json={"name": "schema once"}, headers={"Idempotency-Key": "k" * 16}
    )
    assert created.status_code == 201
    listed = client.get("/api/v1/events?limit=5&status=open")
    assert listed.status_code == 200
    stopped = client.patch(f"/api/v1/events/{created.get_json()['id']}", json={})
    assert stopped.status_code == 200
    assert client.get("/api/v1/audit").status_code == 200
    assert generated == []

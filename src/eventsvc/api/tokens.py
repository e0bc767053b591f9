"""API tokens: create (shown once), list, revoke. Needs ``tokens:admin``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from flask import Response, json, url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from eventsvc.api.schemas import ERROR_RESPONSES, Problem, ResponseModel
from eventsvc.api.services import token_store
from eventsvc.auth import request_context, require_scope
from eventsvc.clock import rfc3339
from eventsvc.tokens import SCOPES, TokenInfo

tokens_tag = Tag(name="tokens", description="API tokens (tokens:admin)")
blueprint = APIBlueprint(
    "tokens",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[tokens_tag],
    abp_security=[{"bearerAuth": []}],
    abp_responses=ERROR_RESPONSES,
)


Scope = Literal["events:read", "events:write", "events:admin", "audit:read", "tokens:admin"]


def _whole_float_to_int(value: Any) -> Any:
    """JSON Schema counts 10.0 as an integer; strict pydantic would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_float_to_int)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    owner: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9@._ -]+$")
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    ttl_days: WholeNumber = Field(default=30, ge=1, le=365)


class TokenPath(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_id: str = Field(pattern=r"^[a-z0-9]{16}$")


class TokenOut(ResponseModel):
    id: str
    owner: str
    scopes: list[str]
    created_at: str
    expires_at: str
    revoked_at: str | None
    created_by: str


class CreatedTokenOut(TokenOut):
    token: str = Field(description="Shown once; only a keyed digest is stored.")


class TokenListOut(ResponseModel):
    items: list[TokenOut]


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {
        "id": info.token_id,
        "owner": info.owner,
        "scopes": sorted(info.scopes),
        "created_at": rfc3339(info.created_at),
        "expires_at": rfc3339(info.expires_at),
        "revoked_at": None if info.revoked_at is None else rfc3339(info.revoked_at),
        "created_by": info.created_by,
    }


@blueprint.post("/tokens", responses={201: CreatedTokenOut, 400: Problem}, summary="Create a token")
@require_scope("tokens:admin")
def create_token(body: TokenCreate) -> Response:
    """The response is the only time the token is visible: store it securely."""
    minted = token_store().create(
        body.owner, body.scopes, timedelta(days=body.ttl_days), request_context()
    )
    payload = token_json(minted.info) | {"token": minted.token}
    response = Response(json.dumps(payload), status=201, mimetype="application/json")
    response.headers["Location"] = url_for(".get_token", token_id=minted.info.token_id)
    return response


@blueprint.get("/tokens", responses={200: TokenListOut}, summary="List tokens")
@require_scope("tokens:admin")
def list_tokens() -> Response:
    body = {"items": [token_json(info) for info in token_store().list()]}
    return Response(json.dumps(body), mimetype="application/json")


@blueprint.get(
    "/tokens/<token_id>", responses={200: TokenOut, 404: Problem}, summary="Read a token's record"
)
@require_scope("tokens:admin")
def get_token(path: TokenPath) -> Response:
    return Response(
        json.dumps(token_json(token_store().get(path.token_id))), mimetype="application/json"
    )


@blueprint.post(
    "/tokens/<token_id>/revoke",
    responses={200: TokenOut, 404: Problem},
    summary="Revoke a token",
)
@require_scope("tokens:admin")
def revoke_token(path: TokenPath) -> Response:
    """Revocation is an action, not a deletion: the record stays readable, with
    revoked_at, for the audit trail. Revoking twice changes nothing."""
    info = token_store().revoke(path.token_id, request_context())
    return Response(json.dumps(token_json(info)), mimetype="application/json")

"""The OpenAPI document and Swagger UI, served from local files only.

Swagger UI's assets come from the ``flask-openapi3-swagger`` wheel, so the
docs work air-gapped (no CDN) and the page's CSP can be ``'self'`` only.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, json, send_from_directory
from werkzeug.exceptions import NotFound

from eventsvc.auth import public_route
from eventsvc.domain import ATTRIBUTE_KEY_PATTERN

blueprint = Blueprint("docs", __name__)
# The API's description holds no data: anyone may read it.
PUBLIC_DOCS = "the OpenAPI document and Swagger UI describe the API and hold no data"

_HERE = files("eventsvc.api") / "static"
_SWAGGER_ASSETS = Path(str(files("flask_openapi3_swagger") / "templates" / "swagger"))


def finish_document(document: dict[str, Any]) -> None:
    """Two corrections to what flask-openapi3 generates, so the document is exact.

    Errors are served as application/problem+json (flask-openapi3 labels
    every model application/json), and its Schema model drops
    ``propertyNames``, which is how the attribute-key rule is expressed.
    Clients, and schemathesis' conformance checks, must see what we serve.
    """
    schemas = document.get("components", {}).get("schemas", {})
    if "EventCreate" in schemas:
        attributes = schemas["EventCreate"]["properties"]["attributes"]
        attributes["propertyNames"] = {"pattern": ATTRIBUTE_KEY_PATTERN.pattern}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if int(status) >= 400 and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document generated from the routes and schemas."""
    document: dict[str, Any] = current_app.api_doc  # type: ignore[attr-defined]
    return document


@blueprint.get("/openapi.json")
@public_route(PUBLIC_DOCS)
def openapi_json() -> Response:
    return Response(json.dumps(openapi_document()), mimetype="application/json")


@blueprint.get("/docs")
@public_route(PUBLIC_DOCS)
def docs_page() -> Response:
    return Response((_HERE / "docs.html").read_text(encoding="utf-8"), mimetype="text/html")


@blueprint.get("/docs/init.js")
@public_route(PUBLIC_DOCS)
def docs_init() -> Response:
    return Response(
        (_HERE / "docs-init.js").read_text(encoding="utf-8"), mimetype="text/javascript"
    )


@blueprint.get("/docs/assets/<path:filename>")
@public_route(PUBLIC_DOCS)
def docs_assets(filename: str) -> Response:
    """Swagger UI's own files; send_from_directory refuses path traversal."""
    if not filename.startswith(("css/", "js/", "images/")):
        raise NotFound()
    return send_from_directory(_SWAGGER_ASSETS, filename, max_age=3600)

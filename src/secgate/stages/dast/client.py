"""secgate's own HTTP client for the DAST target: verified TLS, no redirects, raw methods and paths.

The probe (:mod:`.probe`) sends methods such as TRACE and paths such as
``/api/v1/../`` exactly as written, so this is ``http.client``, not a client
that normalises URLs or follows redirects. TLS is verified against the
target's ``ca_file`` like every other DAST tool. The OpenAPI document the
scanners attack is read here too (:func:`operations`), so coverage can be
counted against it.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from secgate.stages.dast.target import Target

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_BODY = 1 << 20  # enough to see any error page; a probe never needs more


@dataclass(frozen=True)
class Answer:
    """One response as the passive checks see it (headers lower-cased, values joined)."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes
    authenticated: bool  # the request carried the target's auth header


class TargetUnreachable(RuntimeError):
    """The target did not answer (connection, TLS or protocol error)."""


def send(target: Target, method: str, path: str, timeout: float = 10.0) -> Answer:
    """Send ``method path`` (verbatim) to the target with its auth header; read the answer."""
    parts = urlsplit(target.base_url)
    context = ssl.create_default_context(cafile=target.ca_file)
    connection = http.client.HTTPSConnection(
        parts.hostname or "127.0.0.1", parts.port or 443, timeout=timeout, context=context
    )
    headers = {"Accept": "application/json, */*"}
    if target.auth:
        headers[target.auth[0]] = target.auth[1]
    try:
        connection.request(method, parts.path + path, headers=headers)
        response = connection.getresponse()
        body = response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        raise TargetUnreachable(f"{method} {path}: {type(exc).__name__}") from None
    finally:
        connection.close()
    return Answer(
        method=method,
        path=path,
        status=response.status,
        headers={name.lower(): value for name, value in response.getheaders()},
        body=body,
        authenticated=target.auth is not None,
    )


def openapi(target: Target, timeout: float = 10.0) -> dict[str, Any]:
    """The target's ``/openapi.json`` (the document every scanner is given)."""
    answer = send(target, "GET", "/openapi.json", timeout)
    if answer.status != 200:
        raise TargetUnreachable(f"GET /openapi.json answered {answer.status}")
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise TargetUnreachable("GET /openapi.json is not JSON") from None
    if not isinstance(document, dict):
        raise TargetUnreachable("GET /openapi.json is not an OpenAPI object")
    return document


def operations(document: dict[str, Any]) -> list[str]:
    """Every documented operation as ``"METHOD /path/{param}"``, in document order."""
    return [
        f"{method.upper()} {path}"
        for path, item in (document.get("paths") or {}).items()
        if isinstance(item, dict)
        for method in item
        if method in HTTP_METHODS
    ]


def _template(path: str) -> re.Pattern[str]:
    """``/events/{id}`` -> a regex matching one path segment per parameter."""
    pieces = re.split(r"(\{[^}/]+\})", path)
    return re.compile(
        "".join("[^/]+" if piece.startswith("{") else re.escape(piece) for piece in pieces)
    )


def route_of(method: str, path: str, documented: list[str]) -> str:
    """``METHOD /template`` of a request: its operation, else its documented path, else as sent."""
    operation = operation_of(method, path, documented)
    if operation is not None:
        return operation
    templates = {op.split(" ", 1)[1] for op in documented}
    any_method = [f"{method.upper()} {template}" for template in templates]
    matched = operation_of(method, path, any_method)
    return matched or f"{method.upper()} {urlsplit(path).path}"


def operation_of(method: str, path: str, documented: list[str]) -> str | None:
    """The documented operation a concrete request is, if any (literal paths win)."""
    path = urlsplit(path).path
    candidates = [op for op in documented if op.split(" ", 1)[0] == method.upper()]
    for literal_first in (True, False):
        for operation in candidates:
            template = operation.split(" ", 1)[1]
            if ("{" not in template) != literal_first:
                continue
            if _template(template).fullmatch(path):
                return operation
    return None

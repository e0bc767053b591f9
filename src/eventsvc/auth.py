"""Who is calling, and may they? Bearer tokens, scopes and the client certificate.

Every route carries an authorisation decision: the scope it needs
(:func:`require_scope`) or, for the probes and the API docs, an explicit
:func:`public_route` with the reason. A semgrep rule in security/semgrep fails
the build when a route, in any module, has neither; at run time
:func:`authorize_request` refuses (403) a route without one. Failures are
RFC 9457 problems: 401 with ``WWW-Authenticate`` when the token is missing or
not valid, 403 when the token lacks the scope.

**Authenticate first.** flask-openapi3 parses and validates path, query,
headers and body *inside* the view function, before any decorator of ours
would run. :func:`authorize_request` is therefore a ``before_request`` hook:
it reads the requirement :func:`require_scope` attached to the view and
refuses the caller before a byte of the body or query is parsed, so an
anonymous or under-scoped caller learns nothing about the schema (and costs
us no parsing). The decorator checks again, in case a view is ever reached
some other way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, g, request

from eventsvc.api.services import token_store
from eventsvc.domain import RequestContext
from eventsvc.observability import current_trace_id
from eventsvc.tokens import TokenInfo, TokenRejected

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

CLIENT_CERT_SUBJECT_ENVIRON = "eventsvc.client_cert_subject"
# The attribute require_scope sets on a view; functools.wraps (which
# flask-openapi3 uses) copies it onto the view function Flask registers.
SCOPE_REQUIREMENT_ATTRIBUTE = "eventsvc_scope_requirement"
# The attribute public_route sets: why the view needs no credential.
PUBLIC_ROUTE_ATTRIBUTE = "eventsvc_public_reason"


class Unauthenticated(Exception):
    """No valid credential: 401."""

    def __init__(self, reason: str, *, error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.error = error


class Forbidden(Exception):
    """A valid credential without the needed scope or certificate: 403."""

    def __init__(self, reason: str, scope: str | None = None) -> None:
        super().__init__(reason)
        self.scope = scope


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as recorded in logs and the audit trail."""

    token: TokenInfo
    client_cert_subject: str | None

    @property
    def actor(self) -> str:
        """Never the token itself: its id, and the certificate subject when there is one."""
        actor = f"token:{self.token.token_id}"
        if self.client_cert_subject:
            actor += f" cert:{self.client_cert_subject}"
        return actor


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if not header:
        raise Unauthenticated("an Authorization: Bearer token is required", error="")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated("use the Bearer authentication scheme")
    return credentials.strip()


def client_cert_subject() -> str | None:
    """The verified TLS client certificate subject (set by the server), if any."""
    subject = request.environ.get(CLIENT_CERT_SUBJECT_ENVIRON)
    return subject if isinstance(subject, str) and subject else None


def authenticate() -> Principal:
    """Resolve the request's principal once per request (cached on ``g``)."""
    cached = g.get("principal")
    if isinstance(cached, Principal):
        return cached
    try:
        info = token_store().authenticate(_bearer_token())
    except TokenRejected as error:
        raise Unauthenticated(str(error)) from None
    principal = Principal(info, client_cert_subject())
    g.principal = principal
    g.actor = principal.actor
    return principal


@dataclass(frozen=True)
class ScopeRequirement:
    """What a view demands of its caller: a token with ``scope``, maybe a client certificate."""

    scope: str
    client_cert: bool = False

    def check(self) -> Principal:
        """Authenticate the caller and check the requirement; raise 401/403 otherwise."""
        principal = authenticate()
        if self.scope not in principal.token.scopes:
            raise Forbidden(f"this token lacks the scope {self.scope}", scope=self.scope)
        if self.client_cert and principal.client_cert_subject is None:
            raise Forbidden("this operation requires a TLS client certificate")
        return principal


def require_scope(
    scope: str, *, client_cert: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a view: the caller needs a valid token with ``scope``.

    With ``client_cert=True`` the request must also come over mutual TLS with
    a certificate from our PKI. The requirement is attached to the view so
    :func:`authorize_request` enforces it before any input is validated.
    """
    requirement = ScopeRequirement(scope, client_cert)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            requirement.check()
            return view(*args, **kwargs)

        setattr(guarded, SCOPE_REQUIREMENT_ATTRIBUTE, requirement)
        return guarded

    return decorate


def public_route(reason: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a view that anyone may call, saying why (a probe, the API docs).

    Being public is a decision like a scope is: written where the route is,
    reviewed, and visible to the semgrep rule and to :func:`authorize_request`.
    """
    if not reason.strip():
        raise ValueError("a public route must say why it is public")

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        setattr(view, PUBLIC_ROUTE_ATTRIBUTE, reason)
        return view

    return decorate


def authorize_request() -> None:
    """``before_request`` hook: enforce the matched view's decision before its input is parsed.

    Requests that match no route (404/405) and CORS preflights (OPTIONS,
    answered without running the view) pass through; so do views marked
    :func:`public_route`. A view with neither a scope nor that mark is refused
    (fail closed): someone forgot to decide who may call it.
    """
    if request.endpoint is None or request.method == "OPTIONS":
        return
    view = current_app.view_functions.get(request.endpoint)
    requirement = getattr(view, SCOPE_REQUIREMENT_ATTRIBUTE, None)
    if isinstance(requirement, ScopeRequirement):
        requirement.check()
        return
    if isinstance(getattr(view, PUBLIC_ROUTE_ATTRIBUTE, None), str):
        return
    log.error("route %s declares no authorisation decision; refused", request.endpoint)
    raise Forbidden("this route declares no authorisation decision")


def request_context() -> RequestContext:
    """Who is asking and from where, for the audit record of this request."""
    principal = g.get("principal")
    return RequestContext(
        actor=principal.actor if isinstance(principal, Principal) else "anonymous",
        client_address=request.remote_addr,
        request_id=g.get("request_id"),
        trace_id=current_trace_id(),
        client_request_id=g.get("client_request_id"),
        client_traceparent=g.get("client_traceparent"),
    )


def www_authenticate(error: Unauthenticated | Forbidden) -> str:
    """The RFC 6750 challenge for a 401/403."""
    if isinstance(error, Forbidden):
        return f'Bearer realm="eventsvc", error="insufficient_scope", scope="{error.scope or ""}"'
    if error.error:
        return f'Bearer realm="eventsvc", error="{error.error}"'
    return 'Bearer realm="eventsvc"'

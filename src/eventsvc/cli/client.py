"""The CLI's HTTP client for the eventsvc API.

One ``requests.Session`` per invocation. TLS trust comes only from our
config: the CA file if given, else the system store; there is no way to turn
verification off. ``trust_env`` is off so ``REQUESTS_CA_BUNDLE`` or a
``.netrc`` cannot silently replace the CA or the token (this also means
``HTTPS_PROXY`` is ignored). Every failure becomes a :class:`ClientError`
whose message is one readable line.
"""

from __future__ import annotations

import secrets
import ssl
import uuid
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from eventsvc import __version__
from eventsvc.cli.config import ClientConfig
from eventsvc.cli.safe_text import one_line

JsonObject = dict[str, Any]

API_PREFIX = "/api/v1/events"
TOKENS_PATH = "/api/v1/tokens"
AUDIT_PATH = "/api/v1/audit"
NDJSON = "application/x-ndjson"
UNAUTHENTICATED_HINT = (
    "no token configured: set EVENTSVC_TOKEN or token in the config file (mode 0600)"
)

# Connection failures are retried for every method (the request never left).
# Read failures and 502/503/504 only for GET, and for POST because `start`
# sends an Idempotency-Key, so the server can recognise the repeat.
_RETRY = Retry(
    total=3,
    connect=2,
    read=1,
    status=2,
    other=0,
    backoff_factor=0.3,
    status_forcelist=(502, 503, 504),
    allowed_methods=frozenset({"GET", "POST"}),
    raise_on_status=False,
    respect_retry_after_header=False,
)


class ClientError(Exception):
    """A network, TLS or API failure, described in one line without secrets."""


class EventsClient:
    """Calls the events API; returns the API's JSON documents unchanged."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers["User-Agent"] = f"eventsvc-cli/{__version__}"
        # Each CLI run starts a W3C trace: the API and MongoDB spans join it,
        # and the id in an error line finds the run's records in the server logs.
        self.trace_id = secrets.token_hex(16)
        self._session.headers["traceparent"] = f"00-{self.trace_id}-{secrets.token_hex(8)}-01"
        if config.token is not None:
            self._session.headers["Authorization"] = f"Bearer {config.token}"
        if config.client_cert is not None:
            self._session.cert = (
                (str(config.client_cert), str(config.client_key))
                if config.client_key is not None
                else str(config.client_cert)
            )
        adapter = HTTPAdapter(max_retries=_RETRY)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def create_event(
        self, name: str, start_event: str | None, attributes: Mapping[str, str]
    ) -> JsonObject:
        """POST a new event with a fresh Idempotency-Key, so a retried POST is not a duplicate."""
        body: JsonObject = {"name": name}
        if start_event is not None:
            body["start_event"] = start_event
        if attributes:
            body["attributes"] = dict(attributes)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return _json_object(self._request("POST", API_PREFIX, json=body, headers=headers))

    def create_events_batch(self, events: Sequence[JsonObject]) -> list[int]:
        """POST one batch (one transaction); the per-event statuses, 201 new or 200 replayed."""
        body: JsonObject = {"events": list(events)}
        answer = _json_object(self._request("POST", API_PREFIX + ":batch", json=body))
        items = answer.get("items")
        if not isinstance(items, list) or len(items) != len(events):
            raise ClientError("unexpected response from server: the batch has no matching 'items'")
        statuses = [item.get("status") if isinstance(item, dict) else None for item in items]
        if not all(status in (200, 201) for status in statuses):
            raise ClientError("unexpected response from server: an item without a 200/201 status")
        return [int(status) for status in statuses if status is not None]

    def list_events(self, filters: Mapping[str, str], cursor: str | None = None) -> JsonObject:
        """GET one page: ``{"items": [...], "next": cursor | null}``."""
        params = dict(filters)
        if cursor is not None:
            params["cursor"] = cursor
        page = _json_object(self._request("GET", API_PREFIX, params=params))
        if not isinstance(page.get("items"), list):
            raise ClientError("unexpected response from server: list has no 'items' array")
        return page

    def iter_pages(self, filters: Mapping[str, str]) -> Iterator[JsonObject]:
        """Yield pages, following ``next`` until it is null; stop on a repeated cursor."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.list_events(filters, cursor)
            yield page
            next_cursor = page.get("next")
            if not isinstance(next_cursor, str) or not next_cursor:
                return
            if next_cursor in seen:
                raise ClientError("server returned the same page cursor twice; stopping")
            seen.add(next_cursor)
            cursor = next_cursor

    def get_event(self, event_id: str) -> JsonObject:
        """GET one event."""
        return _json_object(self._request("GET", _event_path(event_id)))

    def stop_event(self, event_id: str, stop_event: str | None) -> JsonObject:
        """PATCH ``stop_event``; without a time the server uses its own clock."""
        body: JsonObject = {} if stop_event is None else {"stop_event": stop_event}
        return _json_object(self._request("PATCH", _event_path(event_id), json=body))

    def delete_event(self, event_id: str) -> None:
        """DELETE one event."""
        self._request("DELETE", _event_path(event_id))

    def create_token(self, owner: str, scopes: Sequence[str], ttl_days: int | None) -> JsonObject:
        """POST a new token; the answer holds the plaintext token, the only time it exists.

        Not idempotent: if the answer is lost and the retry succeeds, the first
        token exists unseen (listable and revocable, but never usable).
        """
        body: JsonObject = {"owner": owner, "scopes": list(scopes)}
        if ttl_days is not None:
            body["ttl_days"] = ttl_days
        return _json_object(self._request("POST", TOKENS_PATH, json=body))

    def list_tokens(self) -> JsonObject:
        """GET ``{"items": [...]}``: token records, never a token."""
        listing = _json_object(self._request("GET", TOKENS_PATH))
        if not isinstance(listing.get("items"), list):
            raise ClientError("unexpected response from server: list has no 'items' array")
        return listing

    def revoke_token(self, token_id: str) -> JsonObject:
        """Revoke one token; the record stays, with ``revoked_at``."""
        return _json_object(
            self._request("POST", f"{TOKENS_PATH}/{quote(token_id, safe='')}/revoke")
        )

    def iter_audit_export(self, start: str | None, end: str | None) -> Iterator[bytes]:
        """Stream GET /api/v1/audit as the server sent it (NDJSON bytes, in chunks).

        A body cut off by the network raises ClientError; the caller must then
        discard what it received.
        """
        given = {"from": start, "to": end}
        params = {key: value for key, value in given.items() if value is not None}
        response = self._request("GET", AUDIT_PATH, params=params, stream=True)
        with response:
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if media_type != NDJSON:
                raise ClientError(
                    f"unexpected response from server: {_status_line(response)} is not {NDJSON}"
                )
            try:
                yield from response.iter_content(chunk_size=64 * 1024)
            except requests.exceptions.RequestException as exc:
                raise ClientError(
                    f"audit export from {self._config.url} broke off: {one_line(_reason(exc))}"
                ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: JsonObject | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request with timeout and pinned TLS trust; raise ClientError on failure."""
        try:
            response = self._session.request(
                method,
                self._config.url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=self._config.timeout,
                verify=str(self._config.ca_file) if self._config.ca_file else True,
                allow_redirects=False,
                stream=stream,
            )
        except requests.exceptions.RequestException as exc:
            raise ClientError(self._describe_failure(exc)) from None
        if 300 <= response.status_code < 400:
            raise ClientError(
                f"{_status_line(response)}: the API does not redirect; check the url"
                f" (server points to {one_line(response.headers.get('Location', '?'))})"
            )
        if response.status_code == 401 and self._config.token is None:
            raise ClientError(
                f"{problem_line(response)}; {UNAUTHENTICATED_HINT} (trace {self.trace_id})"
            )
        if response.status_code >= 400:
            raise ClientError(f"{problem_line(response)} (trace {self.trace_id})")
        return response

    def _describe_failure(self, exc: requests.exceptions.RequestException) -> str:
        """Turn a transport exception into 'cannot connect to URL: reason'."""
        url = self._config.url
        if any(_is_timeout(cause) for cause in _causes(exc)):
            return f"no answer from {url} within {self._config.timeout:g} s"
        reason = one_line(_reason(exc))
        if isinstance(exc, requests.exceptions.SSLError):
            trust = (
                f"CA file {self._config.ca_file}"
                if self._config.ca_file
                else "system trust store; set EVENTSVC_CA_FILE or ca_file"
            )
            return f"cannot connect to {url}: {reason} ({trust})"
        if isinstance(exc, requests.exceptions.ConnectionError):
            return f"cannot connect to {url}: {reason}"
        return f"request to {url} failed: {reason}"


def problem_line(response: requests.Response) -> str:
    """Render an RFC 9457 problem as 'STATUS Title: detail (field: message; ...)'."""
    line = _status_line(response)
    problem = _json_or_none(response)
    if not isinstance(problem, dict):
        return line
    title = problem.get("title")
    if isinstance(title, str) and title:
        line = f"{response.status_code} {one_line(title)}"
    detail = problem.get("detail")
    if isinstance(detail, str) and detail:
        line += f": {one_line(detail)}"
    field_errors = _field_errors(problem.get("errors"))
    if field_errors:
        line += f" ({field_errors})"
    return line


def _field_errors(errors: object) -> str:
    """Join ``[{"field", "message"}]`` as ``field: message; field: message``."""
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors:
        if isinstance(error, dict):
            field = one_line(str(error.get("field", "?")))
            message = one_line(str(error.get("message", "")))
            parts.append(f"{field}: {message}")
    return "; ".join(parts)


def _status_line(response: requests.Response) -> str:
    """'404 Not Found', using our own phrase table rather than the server's."""
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = "HTTP error"
    return f"{response.status_code} {phrase}"


def _json_or_none(response: requests.Response) -> object:
    """The response body as JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def _json_object(response: requests.Response) -> JsonObject:
    """The body as a JSON object, or a ClientError saying it is not one."""
    body = _json_or_none(response)
    if not isinstance(body, dict):
        raise ClientError(
            f"unexpected response from server: {_status_line(response)} without a JSON object"
        )
    return body


def _event_path(event_id: str) -> str:
    """The event's URL path; the id is quoted so it can never leave the collection."""
    return f"{API_PREFIX}/{quote(event_id, safe='')}"


def _reason(exc: BaseException) -> str:
    """The innermost useful cause: an SSL verify message or an OS error text."""
    cause = _causes(exc)[-1]
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return str(cause.reason or cause.strerror or cause).lower().replace("_", " ")
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause)


def _is_timeout(exc: BaseException) -> bool:
    """True for connect and read timeouts wherever they sit in the chain.

    requests reports a read timeout after retries as a ConnectionError, and
    urllib3's NewConnectionError (e.g. refused) subclasses its timeout type.
    """
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return False
    timeouts = (TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)
    return isinstance(exc, timeouts)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first, through requests' and urllib3's wrappers."""
    chain = [exc]
    for _ in range(10):
        current = chain[-1]
        candidates = [
            getattr(current, "reason", None),
            current.args[0] if current.args else None,
            current.__cause__,
            current.__context__,
        ]
        inner = next((c for c in candidates if isinstance(c, BaseException)), None)
        if inner is None or inner in chain:
            break
        chain.append(inner)
    return chain

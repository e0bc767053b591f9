"""TLS in the gunicorn workers: the server's SSLContext, and the client certificate's subject.

:func:`ssl_context` is gunicorn's ``ssl_context`` hook: TLS 1.2 at least,
forward-secret AEAD ciphers only, built once per worker.

gunicorn verifies client certificates (``cert_reqs``/``ca_certs``) but does not
tell the application who presented one. :class:`ClientCertThreadWorker` reads
the subject from the TLS socket of each connection and hands it to the app in
the WSGI environ key ``eventsvc.client_cert_subject`` (a name no HTTP header
can produce, so a client cannot forge it). The auth layer records it as part
of the actor and lets routes require it. It also answers the requests gunicorn
itself refuses as problem+json with the security headers
(:mod:`eventsvc.api.refusals`).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

import gunicorn.sock
import gunicorn.util
from cryptography import x509
from gunicorn.workers.gthread import ThreadWorker

from eventsvc.api.refusals import refusal_for, refusal_response
from eventsvc.auth import CLIENT_CERT_SUBJECT_ENVIRON

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# TLS 1.2 ciphers with forward secrecy and AEAD only (TLS 1.3 suites are
# always on and not configurable here).
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

# This worker's TLS context (at most one). Forked workers start with it empty.
_WORKER_TLS_CONTEXT: list[ssl.SSLContext] = []

# gthread handles a request entirely on one pool thread.
_connection = threading.local()


def ssl_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """gunicorn hook: TLS 1.2 minimum, modern ciphers, no compression or renegotiation.

    gunicorn calls it for every connection. The context is built once per
    worker: the key and certificate are read once (not per connection, and
    never half-way through Vault replacing them), and a worker serves the
    certificate it started with until a reload replaces it by a new worker.
    """
    if not _WORKER_TLS_CONTEXT:
        context = default_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(MODERN_CIPHERS)
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        _WORKER_TLS_CONTEXT.append(context)
    return _WORKER_TLS_CONTEXT[0]


def load_tls_context_at_boot(worker: Any) -> None:
    """gunicorn post_worker_init hook: read the TLS files before the first connection."""
    if worker.cfg.is_ssl:
        gunicorn.sock.ssl_context(worker.cfg)


def peer_subject(sock: object) -> str | None:
    """RFC 4514 subject of the verified peer certificate, or None without one."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    der = sock.getpeercert(binary_form=True)
    if not der:
        return None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def with_client_subject(app: WsgiApp) -> WsgiApp:
    """Wrap a WSGI app so it sees this connection's client certificate subject."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.pop(CLIENT_CERT_SUBJECT_ENVIRON, None)
        subject = getattr(_connection, "subject", None)
        if subject:
            environ[CLIENT_CERT_SUBJECT_ENVIRON] = subject
        return app(environ, start_response)

    return wrapped


class ClientCertThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """A gthread worker that exposes the TLS client certificate subject to the app."""

    wsgi: WsgiApp

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = with_client_subject(self.wsgi)

    def handle_request(self, req: Any, conn: Any) -> Any:
        _connection.subject = peer_subject(conn.sock)
        try:
            return super().handle_request(req, conn)
        finally:
            _connection.subject = None

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Answer what gunicorn refused (or failed on) like the app would, never as HTML.

        Replaces gunicorn's own ``handle_error``, which logs the offending
        request line and answers with an HTML page without security headers.
        """
        refusal = refusal_for(exc)
        if refusal.server_fault:
            log.error("the HTTP server failed on a request", exc_info=exc)
        else:
            log.warning(
                "request refused by the HTTP server",
                extra={"status": refusal.status.value, "reason": type(exc).__name__},
            )
        try:
            gunicorn.util.write_nonblock(client, refusal_response(refusal, https=self.cfg.is_ssl))
        except OSError:  # the client is gone or its TLS broke: nothing more to tell it
            log.debug("could not send the refusal")

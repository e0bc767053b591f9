"""gunicorn's gthread worker, plus the verified TLS client certificate's subject.

gunicorn verifies client certificates (``cert_reqs``/``ca_certs``) but does not
tell the application who presented one. This worker reads the subject from
the TLS socket of each connection and hands it to the app in the WSGI
environ key ``eventsvc.client_cert_subject`` (a name no HTTP header can
produce, so a client cannot forge it). The auth layer records it as part of
the actor and lets routes require it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

from cryptography import x509
from gunicorn.workers.gthread import ThreadWorker

from eventsvc.auth import CLIENT_CERT_SUBJECT_ENVIRON

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# gthread handles a request entirely on one pool thread.
_connection = threading.local()


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

"""The server's TLS floor is checked on its own, not through the cipher list (issue #14).

The gunicorn smoke test offers TLS 1.0/1.1 to the real server and expects a
refusal, but the server's cipher list (AEAD suites only, which TLS 1.0/1.1
lack) refuses those handshakes by itself: lowering ``minimum_version`` went
unnoticed. Here the context comes from the real :func:`tlsworker.ssl_context`
hook, the test then *adds* a suite that TLS 1.0/1.1 can negotiate, and a
client that offers only TLS 1.0/1.1 must still be refused. Controls show
that the same suite works over TLS 1.2 and that this machine's OpenSSL can
speak TLS 1.0/1.1 at all, so a refusal means the floor did it. The last
tests check the boot hook that builds the context before the first connection.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from eventsvc import tlsworker
from support import write_test_pki

# Negotiable in TLS 1.0, 1.1 and 1.2 with the test PKI's ECDSA key.
LEGACY_SUITE = "ECDHE-ECDSA-AES128-SHA"
OLD_VERSIONS = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1]

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_test_pki(tmp_path / "pki")


def default_factory(cert_file: Path, key_file: Path) -> Callable[[], ssl.SSLContext]:
    """What gunicorn passes to the hook: a server context holding the certificate."""

    def factory() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    return factory


def real_server_context(
    monkeypatch: pytest.MonkeyPatch, cert_file: Path, key_file: Path
) -> ssl.SSLContext:
    """A fresh context from the production hook (not the one cached for this process)."""
    monkeypatch.setattr(tlsworker, "_WORKER_TLS_CONTEXT", [])
    return tlsworker.ssl_context(None, default_factory(cert_file, key_file))


def handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> str | None:
    """The negotiated version of one loopback handshake, or None when it was refused."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                connection.close()

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                client_context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                return tls.version()
        except (ssl.SSLError, ConnectionResetError):
            return None
        finally:
            server.join(timeout=5)


def legacy_client(ca_file: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only ``version`` and only LEGACY_SUITE."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca_file)
    context.minimum_version = version
    context.maximum_version = version
    context.set_ciphers(f"{LEGACY_SUITE}:@SECLEVEL=0")
    return context


def test_the_hook_sets_tls_1_2_as_the_minimum(
    monkeypatch: pytest.MonkeyPatch, pki: tuple[Path, Path, Path]
) -> None:
    _, cert_file, key_file = pki
    context = real_server_context(monkeypatch, cert_file, key_file)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # Exactly these two options added to the factory's, nothing switched on or off besides.
    default_options = default_factory(cert_file, key_file)().options
    added = ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    assert context.options == default_options | added
    assert {
        cipher["name"] for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.2"
    } <= set(tlsworker.MODERN_CIPHERS.split(":"))


@pytest.mark.parametrize("version", OLD_VERSIONS, ids=["TLSv1.0", "TLSv1.1"])
def test_old_versions_are_refused_even_with_a_suite_they_could_use(
    monkeypatch: pytest.MonkeyPatch, pki: tuple[Path, Path, Path], version: ssl.TLSVersion
) -> None:
    ca_file, cert_file, key_file = pki
    # Control: this OpenSSL can negotiate `version` with LEGACY_SUITE when nothing forbids it.
    permissive = default_factory(cert_file, key_file)()
    permissive.minimum_version = ssl.TLSVersion.TLSv1
    permissive.set_ciphers(f"{LEGACY_SUITE}:@SECLEVEL=0")
    # Without it a refusal would prove nothing, so its absence fails rather than skips.
    assert handshake(permissive, legacy_client(ca_file, version)) is not None, (
        f"control failed: this OpenSSL cannot negotiate {version.name} at all"
    )

    server = real_server_context(monkeypatch, cert_file, key_file)
    server.set_ciphers(f"{tlsworker.MODERN_CIPHERS}:{LEGACY_SUITE}:@SECLEVEL=0")
    # Control: the added suite is acceptable to the server over TLS 1.2 ...
    assert handshake(server, legacy_client(ca_file, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    # ... so refusing it over an older version is the version floor's doing.
    assert handshake(server, legacy_client(ca_file, version)) is None


def gunicorn_config(cert_file: Path | None, key_file: Path | None) -> Config:
    """A real gunicorn configuration using our hook, as server.py sets it up."""
    config = Config()
    if cert_file is not None and key_file is not None:
        config.set("certfile", str(cert_file))
        config.set("keyfile", str(key_file))
    config.set("ssl_context", tlsworker.ssl_context)
    return config


def test_a_tls_worker_builds_its_context_at_boot(
    monkeypatch: pytest.MonkeyPatch, pki: tuple[Path, Path, Path]
) -> None:
    """Key and certificate are read before the first connection, through gunicorn's own path."""
    _, cert_file, key_file = pki
    monkeypatch.setattr(tlsworker, "_WORKER_TLS_CONTEXT", [])
    tlsworker.load_tls_context_at_boot(SimpleNamespace(cfg=gunicorn_config(cert_file, key_file)))
    assert len(tlsworker._WORKER_TLS_CONTEXT) == 1
    assert tlsworker._WORKER_TLS_CONTEXT[0].minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_plain_http_worker_builds_no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tlsworker, "_WORKER_TLS_CONTEXT", [])
    tlsworker.load_tls_context_at_boot(SimpleNamespace(cfg=gunicorn_config(None, None)))
    assert tlsworker._WORKER_TLS_CONTEXT == []

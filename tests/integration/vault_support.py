"""Helpers shared by the Vault integration tests: a real bao, bootstrapped from vault/."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from devstack.openbao import (
    BootstrapResult,
    RunningOpenBao,
    bootstrap,
    deliver_wrapped_secret_id,
    role_id,
    start_openbao,
)
from eventsvc.settings import VaultSettings

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_FILE = REPO / "vault" / "bootstrap.yaml"


@dataclass(frozen=True)
class Stack:
    """A running, bootstrapped OpenBao and what a test needs to log in to it."""

    bao: RunningOpenBao
    boot: BootstrapResult
    root: hvac.Client

    def config(self, tmp_path: Path, **overrides: Any) -> VaultSettings:
        """Vault settings for the eventsvc AppRole with a fresh wrapped secret_id in tmp_path."""
        role = overrides.pop("approle_role", "eventsvc")
        wrapped = deliver_wrapped_secret_id(
            self.root, tmp_path / "wrapped-secret-id", role_name=role
        )
        values: dict[str, Any] = {
            "addr": self.bao.addr,
            "ca_file": self.bao.ca_file,
            "role_id": role_id(self.root, role_name=role),
            "wrapped_secret_id_file": wrapped,
            "approle_role": role,
        }
        values.update(overrides)
        return VaultSettings(**values)


def start_stack(workdir: Path) -> Stack:
    bao = start_openbao(workdir / "bao")
    try:
        root = bao.root_client()
        boot = bootstrap(root, BOOTSTRAP_FILE, workdir / "bootstrap")
    except BaseException:
        bao.stop()
        raise
    return Stack(bao=bao, boot=boot, root=root)


def assert_no_secret_in(text: str, secrets: Iterable[str]) -> None:
    """Fail naming only *which* secret leaked (by position), never its value."""
    for index, secret in enumerate(secrets):
        assert secret, f"secret #{index} is empty: the test would prove nothing"
        assert secret not in text, f"secret #{index} appears in the captured output"


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG on every logger, hvac and urllib3 included."""
    caplog.set_level(logging.DEBUG)


class _ForwardingHandler(BaseHTTPRequestHandler):
    """Forward one request to the real server; HTTP/1.0, so one request a connection."""

    server: InterposedVault

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def _forward(self) -> None:
        if self.server.dropping:
            self.close_connection = True  # no answer at all: the network went away
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() in ("content-type", "x-vault-token", "x-vault-request")
        }
        answer = requests.request(
            self.command,
            self.server.upstream.addr + self.path,
            headers=headers,
            data=body,
            verify=str(self.server.upstream.ca_file),
            timeout=10,
        )
        if self.path == "/v1/sys/wrapping/lookup" and answer.ok:
            self.server.after_lookup(json.loads(body)["token"])
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests carry tokens."""


class InterposedVault(ThreadingHTTPServer):
    """A TLS forwarder in front of a real bao that acts once a wrapping-token lookup
    has been answered: what can happen between the service's lookup and its unwrap
    (someone else unwraps the token first, or Vault becomes unreachable).

    It serves bao's own dev-tls certificate, so the service trusts it with bao's CA file.
    """

    def __init__(self, upstream: RunningOpenBao, after_lookup: Callable[[str], None]) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardingHandler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_dir = upstream.ca_file.parent
        context.load_cert_chain(tls_dir / "vault-cert.pem", tls_dir / "vault-key.pem")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.upstream = upstream
        self.after_lookup = after_lookup
        self.dropping = False
        self.addr = f"https://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> InterposedVault:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()

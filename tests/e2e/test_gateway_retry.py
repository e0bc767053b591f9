"""The gateway's retry: around an instance that is dead but still in rotation, never twice.

One stack for the module (real bao, mongod, gunicorn and traefik) whose gateway
health-checks every 10 minutes: an instance that dies stays in rotation for
the whole module, as a killed instance does between its death and the next
health check. Traefik's ``retry`` middleware (gateway/dynamic/middlewares.yml)
sends a request again, to the next instance, only when it could not send a
single byte of it to the first one (refused, or reset before TLS); a request an
instance received is never sent again, whatever its method, because the
instance may have committed it before it died.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from devstack.api import pick_api_port
from devstack.gateway import GatewayConfig, RunningGateway, pick_gateway_port
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from support import GENEROUS_RATE_LIMIT

NEVER_DURING_THE_MODULE = GatewayConfig(health_interval="600s", health_timeout="2s")
DATABASE = "eventsvc"
REQUESTS = 12


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        StackPaths(tmp_path_factory.mktemp("retry") / ".run"),
        api_port=pick_api_port(0),
        gateway=NEVER_DURING_THE_MODULE,
        gateway_port=pick_gateway_port(0),
        api_env={
            "EVENTSVC_WORKERS": "2",
            "EVENTSVC_RATE_LIMIT_PER_ADDRESS": GENEROUS_RATE_LIMIT,
            "EVENTSVC_RATE_LIMIT_PER_TOKEN": GENEROUS_RATE_LIMIT,
        },
    )
    try:
        yield running
    finally:
        running.stop()


def gateway_of(stack: RunningStack) -> RunningGateway:
    assert stack.gateway is not None
    return stack.gateway


def session(stack: RunningStack) -> requests.Session:
    token = tomllib.loads(stack.paths.cli_config.read_text(encoding="utf-8"))["token"]
    opened = requests.Session()
    opened.trust_env = False
    opened.verify = str(stack.paths.ca_file)
    opened.headers["Authorization"] = f"Bearer {token}"
    return opened


def access_log(stack: RunningStack) -> list[dict[str, Any]]:
    lines = gateway_of(stack).access_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class ResetsEveryConnection:
    """A dead instance: every connection is reset at once, before TLS, so no request reaches it.

    For the gateway the same as the refused port of a killed instance (the
    dial fails, nothing was sent), but it counts the connections, so a test
    can see that the gateway did try it.
    """

    def __init__(self) -> None:
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.connections += 1
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def dead_in_rotation(stack: RunningStack) -> Iterator[ResetsEveryConnection]:
    """The live instance and a dead one, both in rotation (no health check during the module)."""
    gateway = gateway_of(stack)
    real = gateway.backends
    resets = ResetsEveryConnection()
    try:
        gateway.set_backends([*real, resets.url])
        deadline = time.monotonic() + 30
        with session(stack) as client:
            while resets.connections == 0:  # Traefik watches the file: wait until it is loaded
                assert time.monotonic() < deadline, "the gateway never tried the dead instance"
                answer = client.get(f"{stack.url}/api/v1/events?limit=1", timeout=10)
                assert answer.status_code == 200, answer.text
                time.sleep(0.1)
        yield resets
    finally:
        gateway.set_backends(real)
        resets.close()
    log_text = gateway.log_file.read_text(encoding="utf-8")
    assert resets.url not in log_text, "a health check ran: the test proved nothing"


def test_reads_sent_to_dead_instances_still_in_rotation_all_succeed(
    stack: RunningStack, dead_in_rotation: ResetsEveryConnection
) -> None:
    tried_before = dead_in_rotation.connections
    with session(stack) as client:
        statuses = [
            client.get(f"{stack.url}/api/v1/events?limit=1", timeout=10).status_code
            for _ in range(REQUESTS)
        ]
    assert statuses == [200] * REQUESTS
    assert dead_in_rotation.connections > tried_before


def test_a_write_that_never_reached_an_instance_is_retried_and_written_once(
    stack: RunningStack, dead_in_rotation: ResetsEveryConnection
) -> None:
    """Reset before TLS: not one byte reached the dead instance, so sending it again is safe."""
    tried_before = dead_in_rotation.connections
    marker = uuid.uuid4().hex
    with session(stack) as client:
        statuses = [
            client.post(
                f"{stack.url}/api/v1/events",
                json={"name": "retry test", "attributes": {"marker": marker, "n": str(number)}},
                headers={"Idempotency-Key": f"{marker}-{number}"},
                timeout=10,
            ).status_code
            for number in range(REQUESTS)
        ]
    assert statuses == [201] * REQUESTS
    assert dead_in_rotation.connections > tried_before
    with stack.mongod.admin_client() as admin:
        written = list(admin[DATABASE]["events"].find({"attributes.marker": marker}))
    assert sorted(int(event["attributes"]["n"]) for event in written) == list(range(REQUESTS))


# --- An instance that received the request and died before answering --------------------------


class _DiesMidRequest(BaseHTTPRequestHandler):
    """Answers GET /readyz; reads any other request whole, counts it, and hangs up unanswered."""

    protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses the connection
    received: ClassVar[list[str]] = []
    timeout = 10

    def do_GET(self) -> None:
        if self.path == "/readyz":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self._die()

    def do_POST(self) -> None:
        self._read_body_and_die()

    def do_PATCH(self) -> None:
        self._read_body_and_die()

    def do_DELETE(self) -> None:
        self._read_body_and_die()

    def _read_body_and_die(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._die()

    def _die(self) -> None:
        _DiesMidRequest.received.append(f"{self.command} {self.path}")
        self.close_connection = True  # no status line: the connection just ends

    def log_message(self, *args: object) -> None:
        return


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(("127.0.0.1", 0), _DiesMidRequest)

    def get_request(self) -> tuple[Any, Any]:
        raw, address = self.socket.accept()
        return self._context.wrap_socket(raw, server_side=True), address


@pytest.fixture
def dies_mid_request(stack: RunningStack, tmp_path: Path) -> Iterator[str]:
    """An instance with a certificate from our PKI (the gateway trusts it) that dies mid-request."""
    issued = stack.root_client().write_data(
        "pki_int/issue/eventsvc-api-server",
        data={"common_name": "localhost", "ip_sans": "127.0.0.1", "ttl": "10m"},
    )["data"]
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_text(
        "\n".join([issued["certificate"], *issued.get("ca_chain", [])]) + "\n", encoding="ascii"
    )
    key_file.write_text(issued["private_key"] + "\n", encoding="ascii")
    key_file.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = _TLSServer(context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = gateway_of(stack)
    real = gateway.backends
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        gateway.set_backends([url])  # the only instance: a retry could only come back to it
        deadline = time.monotonic() + 30
        while not any(e.get("ServiceURL") == url for e in access_log(stack)):
            assert time.monotonic() < deadline, "the gateway never used the new instance"
            requests.get(f"{stack.url}/readyz", verify=str(stack.paths.ca_file), timeout=10)
            time.sleep(0.1)
        _DiesMidRequest.received.clear()
        yield url
    finally:
        gateway.set_backends(real)
        server.shutdown()
        server.server_close()


WRITES = [
    ("POST", "/api/v1/events", {"name": "never twice"}),
    ("PATCH", "/api/v1/tokens/t1", {"scopes": ["events:read"]}),
    ("DELETE", "/api/v1/tokens/t1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[w[0] for w in WRITES])
def test_a_write_that_reached_an_instance_which_then_died_is_not_sent_again(
    stack: RunningStack, dies_mid_request: str, method: str, path: str, body: object
) -> None:
    """It may have committed: the gateway answers 502, the client retries with its key."""
    with session(stack) as client:
        client.get(f"{stack.url}/readyz", timeout=10)  # a kept-alive connection to reuse
        answer = client.request(
            method,
            f"{stack.url}{path}",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else None,
            timeout=10,
        )
    assert answer.status_code == 502
    assert _DiesMidRequest.received == [f"{method} {path}"]

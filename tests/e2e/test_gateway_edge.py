"""Hostile traffic at the edge: the whole stack with Traefik in front, attacked from 127.0.0.1.

One stack for the module (real bao, mongod, gunicorn and traefik), with the
gateway's limits tightened so each attack shows in seconds. The attacker
sends from 127.0.0.1, the legitimate client from 127.0.0.2 (another host, as
per-address limits see it), and only 127.0.0.2 may reach the admin routes.
Each test asserts behaviour (the request is refused at the gateway, the app
never sees it, the legitimate client keeps succeeding), never speed; the
numbers are printed (``pytest -s``) and measured properly by
``tests/perf/edge_attacks.py``.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID

from devstack.api import pick_api_port
from devstack.errors import StackError
from devstack.gateway import GatewayConfig, RunningGateway, pick_gateway_port
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from edge_support import (
    ATTACKER,
    LEGIT,
    flood,
    legit_client,
    session_from,
    slow_bodies,
    slowloris,
)
from support import GENEROUS_RATE_LIMIT, write_test_pki

READ_TIMEOUT_S = 3
CERT_TTL_S = 45
EDGE = GatewayConfig(
    rate_average=20,
    rate_burst=20,
    in_flight=4,
    max_body_bytes=64 * 1024,
    max_header_bytes=8 * 1024,
    read_timeout=f"{READ_TIMEOUT_S}s",
    idle_timeout="5s",
    health_interval="1s",
    health_timeout="1s",
    admin_source_ranges=(f"{LEGIT}/32",),
    cert_ttl=f"{CERT_TTL_S}s",  # renewed at 2/3 of it, while the module runs
)
FIRST_SERIAL: dict[str, str] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    paths = StackPaths(tmp_path_factory.mktemp("edge") / ".run")
    running = start_stack(
        paths,
        api_port=pick_api_port(0),
        gateway=EDGE,
        gateway_port=pick_gateway_port(0),
        # The app's own limiter is not under test here: keep it out of the way.
        api_env={
            "EVENTSVC_WORKERS": "2",
            "EVENTSVC_RATE_LIMIT_PER_ADDRESS": GENEROUS_RATE_LIMIT,
            "EVENTSVC_RATE_LIMIT_PER_TOKEN": GENEROUS_RATE_LIMIT,
        },
    )
    assert running.gateway is not None
    FIRST_SERIAL["serial"] = running.gateway.cert.serial_number
    try:
        yield running
    finally:
        running.stop()


def gateway_of(stack: RunningStack) -> RunningGateway:
    assert stack.gateway is not None
    return stack.gateway


def cli_token(stack: RunningStack) -> str:
    token: str = tomllib.loads(stack.paths.cli_config.read_text(encoding="utf-8"))["token"]
    return token


def mint(stack: RunningStack, *scopes: str) -> str:
    """A token with ``scopes``, minted by the operator from the allowed admin address."""
    operator = tomllib.loads(stack.paths.operator_config.read_text(encoding="utf-8"))["token"]
    with session_from(LEGIT, stack.paths.ca_file, operator) as admin:
        created = admin.post(
            f"{stack.url}/api/v1/tokens",
            json={"owner": "edge-test", "scopes": list(scopes), "ttl_days": 1},
            timeout=30,
        )
    assert created.status_code == 201, created.text
    token: str = created.json()["token"]
    return token


def access_log(stack: RunningStack) -> list[dict[str, Any]]:
    lines = gateway_of(stack).access_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def settle(seconds: float = 1.5) -> None:
    """Let the attacker's per-address token bucket refill before the next test."""
    time.sleep(seconds)


# --- Where the API is, and TLS at both hops ---------------------------------------------------


def test_the_cli_talks_to_the_gateway_not_to_the_api(stack: RunningStack) -> None:
    config = tomllib.loads(stack.paths.cli_config.read_text(encoding="utf-8"))
    assert config["url"] == gateway_of(stack).url == stack.state()["api_url"]
    assert config["url"] != stack.api.url


def test_clients_get_the_gateway_certificate_from_our_pki(stack: RunningStack) -> None:
    context = ssl.create_default_context(cafile=str(stack.paths.ca_file))
    with (
        socket.create_connection(("127.0.0.1", gateway_of(stack).port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
    units = served.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [unit.value for unit in units] == ["eventsvc-gateway"]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_below_1_2_is_refused_at_the_gateway(stack: RunningStack) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(stack.paths.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", gateway_of(stack).port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def served_serial(stack: RunningStack) -> int:
    context = ssl.create_default_context(cafile=str(stack.paths.ca_file))
    with (
        socket.create_connection(("127.0.0.1", gateway_of(stack).port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return x509.load_der_x509_certificate(
            tls.getpeercert(binary_form=True) or b""
        ).serial_number


class _Backend(BaseHTTPRequestHandler):
    """An impostor API: answers 200 to anything, and counts what reached it."""

    seen: ClassVar[list[str]] = []
    timeout = 5

    def do_GET(self) -> None:
        _Backend.seen.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return


class _TLSServer(ThreadingHTTPServer):
    """TLS handshakes in the handler threads, so one stalled handshake blocks no other."""

    def __init__(
        self, address: tuple[str, int], handler: type[_Backend], context: ssl.SSLContext
    ) -> None:
        self._context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        raw, address = self.socket.accept()
        return (
            self._context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False),
            address,
        )


def test_a_backend_with_a_certificate_from_another_ca_gets_no_request(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The gateway verifies the API instances against our CA, not just any certificate."""
    _, cert_file, key_file = write_test_pki(tmp_path / "impostor")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = _TLSServer(("127.0.0.1", 0), _Backend, context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = gateway_of(stack)
    real = gateway.backends
    try:
        gateway.set_backends([f"https://127.0.0.1:{server.server_address[1]}"])
        deadline = time.monotonic() + 30
        while True:
            answer = requests.get(
                f"{stack.url}/readyz", verify=str(stack.paths.ca_file), timeout=10
            )
            if answer.status_code != 200:
                break
            assert time.monotonic() < deadline, "the gateway still answers 200"
            time.sleep(0.5)
        assert answer.status_code in (500, 502, 503)  # Traefik: 500 on a TLS failure
        assert _Backend.seen == []
    finally:
        gateway.set_backends(real)
        server.shutdown()
        server.server_close()  # refused at once, not a handshake that never comes
    wait_until_ready(stack)


def test_an_instance_that_fails_its_health_check_gets_no_traffic(stack: RunningStack) -> None:
    """Two backends, one of them dead: after a health check, every request lands on the live one."""
    gateway = gateway_of(stack)
    real = gateway.backends
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{probe.getsockname()[1]}"
    try:
        gateway.set_backends([*real, dead])
        deadline = time.monotonic() + 30
        while dead not in gateway.log_file.read_text(encoding="utf-8"):  # "Health check failed"
            assert time.monotonic() < deadline, "the gateway never checked the new instance"
            time.sleep(0.5)
        while not all_ok(stack, 20):
            assert time.monotonic() < deadline, "requests still go to the dead instance"
            time.sleep(0.5)
        entries = access_log(stack)[-20:]
        assert {e.get("ServiceURL") for e in entries} == set(real)
    finally:
        gateway.set_backends(real)


def all_ok(stack: RunningStack, count: int) -> bool:
    with session_from(LEGIT, stack.paths.ca_file) as session:
        return all(
            session.get(f"{stack.url}/healthz", timeout=10).status_code == 200 for _ in range(count)
        )


def wait_until_ready(stack: RunningStack) -> None:
    deadline = time.monotonic() + 30
    while True:
        answer = requests.get(f"{stack.url}/readyz", verify=str(stack.paths.ca_file), timeout=10)
        if answer.status_code == 200:
            return
        assert time.monotonic() < deadline
        time.sleep(0.5)


# --- Size limits and header tricks ------------------------------------------------------------


def test_an_oversized_body_is_413_at_the_gateway(stack: RunningStack) -> None:
    with session_from(ATTACKER, stack.paths.ca_file, cli_token(stack)) as session:
        answer = session.post(f"{stack.url}/api/v1/events", data=b"x" * (EDGE.max_body_bytes + 1))
    assert answer.status_code == 413
    refused = [e for e in access_log(stack) if e.get("DownstreamStatus") == 413]
    assert refused
    assert all(not e.get("OriginStatus") for e in refused), "the app saw it"


def test_oversized_headers_are_431_at_the_gateway(stack: RunningStack) -> None:
    with session_from(ATTACKER, stack.paths.ca_file) as session:
        answer = session.get(f"{stack.url}/readyz", headers={"X-Big": "a" * 16_384})
    assert answer.status_code == 431


@pytest.mark.parametrize("alias", ["X_Forwarded_For", "X.Forwarded.For", "X-Forwarded_For"])
def test_aliases_of_header_names_are_refused(stack: RunningStack, alias: str) -> None:
    """A WSGI app reads X_Forwarded_For as X-Forwarded-For: such names never pass."""
    with session_from(ATTACKER, stack.paths.ca_file) as session:
        answer = session.get(f"{stack.url}/readyz", headers={alias: "203.0.113.9"})
    assert answer.status_code == 400


def test_security_headers_appear_once_on_app_and_gateway_answers(stack: RunningStack) -> None:
    expected = {
        "strict-transport-security": "max-age=31536000; includeSubDomains",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cross-origin-resource-policy": "same-origin",
    }
    for method, path, body, status in (
        ("GET", "/readyz", None, 200),  # the app's answer, through the gateway
        ("POST", "/api/v1/events", b"x" * (EDGE.max_body_bytes + 1), 413),  # the gateway's own
    ):
        headers = raw_headers(stack, method, path, body)
        assert headers["status"] == [str(status)]
        for name, value in expected.items():
            assert headers.get(name) == [value], (path, name, headers.get(name))
        assert "server" not in headers


def raw_headers(
    stack: RunningStack, method: str, path: str, body: bytes | None
) -> dict[str, list[str]]:
    """Every response header as sent (a repeated header shows twice), lower-cased names."""
    context = ssl.create_default_context(cafile=str(stack.paths.ca_file))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", gateway_of(stack).port, context=context, timeout=10
    )
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        collected: dict[str, list[str]] = {"status": [str(response.status)]}
        for name, value in response.getheaders():
            collected.setdefault(name.lower(), []).append(value)
        return collected
    finally:
        connection.close()


# --- Admin routes: allowed networks only ---------------------------------------------------


ADMIN_PATHS = [
    "/api/v1/tokens",
    "/api/v1/tokens/",
    "/api/v1/tokens/abc/revoke",
    "/api/v1/audit?from=2026-01-01T00:00:00Z",
    "//api/v1/tokens",
    "/api/v1/./tokens",
    "/api/v1/events/../tokens",
    "/api/v1/%74okens",
    "/api/v1/%61udit",
]


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_routes_from_a_non_allowed_address_are_403(stack: RunningStack, path: str) -> None:
    operator = tomllib.loads(stack.paths.operator_config.read_text(encoding="utf-8"))["token"]
    with session_from(ATTACKER, stack.paths.ca_file, operator) as session:
        answer = session.get(
            f"{stack.url}{path}", headers={"X-Forwarded-For": LEGIT}, allow_redirects=False
        )
        settle(0.1)
    assert answer.status_code == 403, (path, answer.status_code, answer.text[:200])
    assert "application/problem+json" not in answer.headers.get("Content-Type", "")


@pytest.mark.parametrize("path", ["/api/v1/tokens%2F", "/api/v1/a%2F..%2Ftokens", "/api/%2574"])
def test_encoded_separators_in_paths_are_refused(stack: RunningStack, path: str) -> None:
    with session_from(ATTACKER, stack.paths.ca_file) as session:
        answer = session.get(f"{stack.url}{path}")
    assert answer.status_code == 400


def test_admin_routes_from_the_allowed_address_reach_the_app(stack: RunningStack) -> None:
    with session_from(LEGIT, stack.paths.ca_file) as session:
        answer = session.get(f"{stack.url}/api/v1/tokens")
    assert answer.status_code == 401  # the app's answer: no token
    assert answer.headers["Content-Type"] == "application/problem+json"


# --- Client addresses -----------------------------------------------------------------------


def test_a_spoofed_x_forwarded_for_does_not_change_the_address_the_app_records(
    stack: RunningStack,
) -> None:
    spoofed = "198.51.100.77"
    with session_from(ATTACKER, stack.paths.ca_file, cli_token(stack)) as session:
        created = session.post(
            f"{stack.url}/api/v1/events",
            json={"name": "spoofed-xff"},
            headers={
                "X-Forwarded-For": spoofed,
                "X-Real-Ip": spoofed,
                "Forwarded": f"for={spoofed}",
            },
        )
    assert created.status_code == 201, created.text
    with session_from(LEGIT, stack.paths.ca_file, mint(stack, "audit:read")) as auditor:
        trail = auditor.get(f"{stack.url}/api/v1/audit", timeout=30)
    assert trail.status_code == 200, trail.text
    assert spoofed not in trail.text
    records = [json.loads(line) for line in trail.text.splitlines() if line.strip()]
    mine = [r for r in records if created.json()["id"] in json.dumps(r)]
    assert mine, "the creation is in the trail"
    assert {r.get("client_address") for r in mine if "client_address" in r} == {ATTACKER}


def test_the_api_listens_on_loopback_only(stack: RunningStack) -> None:
    port = stack.api.port
    assert listeners(Path("/proc/net/tcp"), port) == [f"0100007F:{port:04X}"]  # 127.0.0.1 only
    assert listeners(Path("/proc/net/tcp6"), port) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()
    outside = non_loopback_address()
    if outside is not None:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((outside, port), timeout=5).close()


def listeners(table: Path, port: int) -> list[str]:
    """Local addresses listening on ``port`` in a /proc/net/tcp* table (state 0A: LISTEN)."""
    if not table.exists():
        return []
    rows = [line.split() for line in table.read_text(encoding="ascii").splitlines()[1:]]
    return [row[1] for row in rows if row[3] == "0A" and row[1].endswith(f":{port:04X}")]


def non_loopback_address() -> str | None:
    """This host's address on its default route (a UDP connect sends nothing), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


# --- Exhaustion: the legitimate client keeps succeeding ------------------------------------


def test_a_flood_from_one_address_gets_429_and_the_legit_client_keeps_succeeding(
    stack: RunningStack,
) -> None:
    with legit_client(stack.url, stack.paths.ca_file, cli_token(stack)) as legit:
        flooded = flood(stack.url, stack.paths.ca_file, duration_s=4)
    print(f"\nflood: {dict(flooded)}\n{legit.line('legit client during the flood')}")
    assert flooded[429] > 0
    assert flooded[429] > flooded[200]
    assert legit.total > 0
    assert legit.success_rate == 1.0, legit.statuses
    settle()


def test_slowloris_connections_are_cut_and_the_legit_client_keeps_succeeding(
    stack: RunningStack,
) -> None:
    with legit_client(stack.url, stack.paths.ca_file, cli_token(stack)) as legit:
        slow = slowloris(stack.url, stack.paths.ca_file, connections=100, duration_s=15)
    print(f"\nslowloris: {slow.summary()}\n{legit.line('legit client during slowloris')}")
    assert slow.opened == 100
    assert slow.closed_by_server == slow.opened, "the gateway cut every never-ending request"
    assert legit.total > 0
    assert legit.success_rate == 1.0, legit.statuses
    settle()


def test_slow_bodies_are_capped_and_cut_and_the_legit_client_keeps_succeeding(
    stack: RunningStack,
) -> None:
    with legit_client(stack.url, stack.paths.ca_file, cli_token(stack)) as legit:
        slow = slow_bodies(stack.url, stack.paths.ca_file, connections=12, duration_s=15)
    print(f"\nslow bodies: {slow.summary()}\n{legit.line('legit client during slow bodies')}")
    capped = sum(n for how, n in slow.responses.items() if " 429 " in f"{how} ")
    assert capped >= slow.opened - EDGE.in_flight, slow.responses  # beyond the in-flight cap
    assert slow.closed_by_server == slow.opened
    cut = [e for e in access_log(stack) if e.get("DownstreamStatus") in (429, 499)]
    assert cut
    assert all(not e.get("OriginStatus") for e in cut), "a slow body reached the app"
    assert legit.total > 0
    assert legit.success_rate == 1.0, legit.statuses
    settle()


def test_the_access_log_is_json_and_holds_no_header(stack: RunningStack) -> None:
    entries = access_log(stack)
    assert entries
    assert all("ClientHost" in entry for entry in entries)
    text = gateway_of(stack).access_log.read_text(encoding="utf-8")
    assert cli_token(stack) not in text
    assert "Authorization" not in text


def test_the_certificate_is_renewed_before_it_expires_without_a_restart(
    stack: RunningStack,
) -> None:
    """Last in the module: by now the runner's renewal (at 2/3 of 45 s) is due or done."""
    gateway = gateway_of(stack)
    pid = gateway.process.pid
    deadline = time.monotonic() + CERT_TTL_S
    while gateway.cert.serial_number == FIRST_SERIAL["serial"]:
        assert time.monotonic() < deadline, "no renewal"
        time.sleep(0.5)
    while served_serial(stack) != int(gateway.cert.serial_number.replace(":", ""), 16):
        assert time.monotonic() < deadline, "the gateway still serves the old certificate"
        time.sleep(0.5)
    assert gateway.process.pid == pid
    assert gateway.is_running
    assert datetime.now(UTC) < gateway.cert.not_after


def test_a_renewal_that_vault_refuses_is_one_line_and_the_gateway_keeps_serving(
    stack: RunningStack,
) -> None:
    """After the renewal test: the gateway's token is revoked, as if its lease were lost."""
    gateway = gateway_of(stack)
    stack.root_client().auth.token.revoke(gateway._vault.token)
    with pytest.raises(StackError, match=r"^gateway certificate failed: .*; log: .*gateway\.log$"):
        gateway.renew_certificate()
    answer = requests.get(f"{stack.url}/readyz", verify=str(stack.paths.ca_file), timeout=10)
    assert answer.status_code == 200

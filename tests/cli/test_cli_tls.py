"""TLS and transport failures: refused, one readable line, exit 1; the token never shown."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from cli.cli_support import Pki, RunningServer, assert_one_error_line, server_context

Run = Callable[..., Result]
StartServer = Callable[..., RunningServer]
TOKEN = "tok-SECRET-4b1d"


def test_server_cert_from_another_ca_is_refused(
    run: Run, start_server: StartServer, pki: Pki
) -> None:
    other = start_server(server_context(pki.other_server))
    result = run("list", env={"EVENTSVC_URL": other.url, "EVENTSVC_CA_FILE": str(pki.ca)})
    line = assert_one_error_line(result)
    assert line.startswith(f"error: cannot connect to {other.url}: certificate verify failed")
    assert f"(CA file {pki.ca})" in line
    assert other.state.received == []


def test_system_trust_does_not_accept_a_private_ca(
    run: Run, start_server: StartServer, pki: Pki
) -> None:
    server = start_server(server_context(pki.server))
    line = assert_one_error_line(run("list", env={"EVENTSVC_URL": server.url}))
    assert "certificate verify failed" in line
    assert "system trust store" in line


def test_hostname_must_match_the_certificate(run: Run, start_server: StartServer, pki: Pki) -> None:
    server = start_server(server_context(pki.wrong_name))
    env = {"EVENTSVC_URL": server.url, "EVENTSVC_CA_FILE": str(pki.ca)}
    line = assert_one_error_line(run("list", env=env))
    assert "certificate verify failed: IP address mismatch" in line


def test_localhost_name_is_verified_too(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    env = {**client_env, "EVENTSVC_URL": api.url.replace("127.0.0.1", "localhost")}
    assert run("list", env=env).exit_code == 0


def test_mutual_tls_with_and_without_client_cert(
    run: Run, start_server: StartServer, pki: Pki
) -> None:
    server = start_server(server_context(pki.server, client_ca=pki.ca))
    env = {"EVENTSVC_URL": server.url, "EVENTSVC_CA_FILE": str(pki.ca)}
    refused = run("list", env=env)
    assert_one_error_line(refused)
    accepted = run(
        "--client-cert", str(pki.client.cert), "--client-key", str(pki.client.key), "list", env=env
    )
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.strip() == "no events"


def test_client_key_without_cert_is_a_config_error(run: Run, pki: Pki) -> None:
    result = run("--client-key", str(pki.client.key), "list")
    assert_one_error_line(result, exit_code=2)


def test_connection_refused(run: Run) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = assert_one_error_line(run("list", env={"EVENTSVC_URL": f"https://127.0.0.1:{port}"}))
    assert line == f"error: cannot connect to https://127.0.0.1:{port}: Connection refused"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for connection in held:
        connection.close()
    listener.close()


def test_timeout_is_one_line(run: Run, silent_server: str) -> None:
    line = assert_one_error_line(
        run(
            "--timeout",
            "0.3",
            "show",
            "65f000000000000000000000",
            env={"EVENTSVC_URL": silent_server},
        )
    )
    assert line == f"error: no answer from {silent_server} within 0.3 s"


def test_plain_http_needs_loopback_and_opt_in(run: Run, start_server: StartServer) -> None:
    server = start_server(None)
    refused = run("list", env={"EVENTSVC_URL": server.url})
    assert "plain http" in assert_one_error_line(refused, exit_code=2)
    allowed = run("list", env={"EVENTSVC_URL": server.url, "EVENTSVC_ALLOW_HTTP_LOOPBACK": "1"})
    assert allowed.exit_code == 0, allowed.output
    remote = run(
        "list", env={"EVENTSVC_URL": "http://example.com", "EVENTSVC_ALLOW_HTTP_LOOPBACK": "1"}
    )
    assert_one_error_line(remote, exit_code=2)


def test_token_is_sent_as_bearer_and_never_printed(
    run: Run, client_env: dict[str, str], api: RunningServer
) -> None:
    api.state.token = TOKEN
    ok = run("start", "x", "--json", env={**client_env, "EVENTSVC_TOKEN": TOKEN})
    assert ok.exit_code == 0, ok.output
    assert api.state.received[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    wrong = run("list", env={**client_env, "EVENTSVC_TOKEN": "not-the-token"})
    line = assert_one_error_line(wrong)
    assert line == "error: 401 Unauthorized: a valid bearer token is required"
    missing = run("list", env=client_env)
    assert assert_one_error_line(missing).endswith(
        "; no token configured: set EVENTSVC_TOKEN or token in the config file (mode 0600)"
    )
    for result in (ok, wrong):
        assert TOKEN not in result.output
        assert "not-the-token" not in result.output


def test_malformed_token_is_refused_without_echoing_it(
    run: Run, client_env: dict[str, str]
) -> None:
    result = run("list", env={**client_env, "EVENTSVC_TOKEN": "abc def\r\nX-Evil: 1"})
    line = assert_one_error_line(result, exit_code=2)
    assert "abc" not in line
    assert "EVENTSVC_TOKEN" in line


def test_there_is_no_token_flag(run: Run, client_env: dict[str, str]) -> None:
    assert run("--token", TOKEN, "list", env=client_env).exit_code == 2


def test_there_is_no_insecure_switch(run: Run) -> None:
    help_text = run("--help").stdout.lower()
    assert "insecure" not in help_text
    assert "no-verify" not in help_text
    assert run("--insecure", "list").exit_code == 2


def test_installed_entry_point_prints_one_line_and_no_retry_warnings(tmp_path: Path) -> None:
    """A real process: urllib3's retry warnings must not reach stderr, nor a traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "EVENTSVC_URL": f"https://127.0.0.1:{port}",
    }
    entry_point = Path(sys.executable).with_name("eventsvc")
    done = subprocess.run(
        [str(entry_point), "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"error: cannot connect to https://127.0.0.1:{port}: Connection refused\n"
    version = subprocess.run(
        [str(entry_point), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.stdout.startswith("eventsvc ")

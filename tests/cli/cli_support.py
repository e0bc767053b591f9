"""Helpers shared by the CLI tests (importable as ``cli_support``)."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from click.testing import Result

from cli.cli_fake_api import FakeState


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: Issued
    client: Issued
    other_ca: Path
    other_server: Issued
    wrong_name: Issued


@dataclass
class RunningServer:
    """A server started by the ``start_server`` fixture."""

    url: str
    state: FakeState


def server_context(cert: Issued, client_ca: Path | None = None) -> ssl.SSLContext:
    """A TLS server context; with ``client_ca`` it requires a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert.cert, cert.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


def assert_one_error_line(result: Result, exit_code: int = 1) -> str:
    """Exit code as expected, stdout empty, exactly one 'error: ' line, no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return TRACE_SUFFIX.sub("", lines[0])


# API errors end with the run's trace id, to find it in the server logs;
# tests compare the rest of the line.
TRACE_SUFFIX = re.compile(r" \(trace [0-9a-f]{32}\)$")


class ServedApi(Protocol):
    """What the CLI tests use of tests/conftest.py's ``api_server`` (the real gunicorn app)."""

    base_url: str
    ca_file: Path
    token: str

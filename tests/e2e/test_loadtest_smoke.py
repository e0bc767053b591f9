"""``make loadtest-smoke``: the load test harness works end to end, with zero errors.

A real run (a throwaway full stack, the bare Flask and raw pymongo baselines, two
locust processes from .venv-loadtest, the report and its plots) in seconds per
stage. It asserts that everything was measured and written and that no request
failed; it never asserts a speed (the figures are the report's business). And
the load generator verifies the API's certificate: signed by another CA, no
request gets through.
"""

from __future__ import annotations

import csv
import json
import os
import re
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support import write_test_pki

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOKEN_SHAPE = re.compile(rb"evt_[A-Za-z0-9]+_[A-Za-z0-9_-]{16,}")
LOADTEST_PYTHON = REPO / ".venv-loadtest" / "bin" / "python"
LOCUSTFILE = REPO / "tests" / "perf" / "loadtest" / "locustfile.py"


def test_loadtest_smoke_measures_everything_without_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    result = subprocess.run(
        [sys.executable, "-m", "perf.loadtest", "--smoke", "--reports", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = (tmp_path / "latest").resolve()
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))

    measured = {stage["name"]: stage for stage in report["stages"]}
    expected = {"healthz", "list", "create", "bare-insert", "raw-pymongo", "read-heavy"}
    assert expected <= set(measured)
    assert any(name.startswith("mix-") for name in measured)
    assert any(name.startswith("ladder-") for name in measured)
    for stage in report["stages"]:
        assert stage["requests"] > 0, stage["name"]
        assert stage["errors"] == 0, (stage["name"], stage["statuses"])
    # The batch endpoint is measured when the API has it, and otherwise said to be missing.
    assert ("batch" in measured) == report["batch"]["available"]
    if not report["batch"]["available"]:
        assert report["batch"]["status"] in (404, 405)
        assert "not available" in report["batch"]["note"]
    assert report["storage"]["collections"]["events"]["count"] > 0
    assert report["knee"] is not None

    text = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Goals" in text
    assert "x bare Flask" in text
    assert "x raw pymongo" in text
    assert text in result.stdout
    for plot in ("throughput.png", "latency.png", "latency-vs-load.png", "cpu.png"):
        assert (run_dir / plot).read_bytes().startswith(PNG_MAGIC), plot
    for run in ("closed-loop", "paced"):
        assert (run_dir / f"locust-{run}.html").stat().st_size > 0
        assert (run_dir / f"locust-{run}_stats.csv").stat().st_size > 0
    # The API token the load generator used is in no file of the report.
    for path in run_dir.iterdir():
        assert not TOKEN_SHAPE.search(path.read_bytes()), path.name


def https_server(pki_dir: Path) -> tuple[ThreadingHTTPServer, int]:
    """A real HTTPS server on loopback (certificate from ``write_test_pki``) answering 200."""

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    _, cert_file, key_file = write_test_pki(pki_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def run_locust_healthz(tmp_path: Path, port: int, ca_file: Path, label: str) -> list[str]:
    """locust (the harness's locustfile) sends GET /healthz for 2 s; the samples' statuses."""
    work = tmp_path / label
    work.mkdir()
    plan = {
        "stages": [
            {"name": "healthz", "users": 1, "scenario": "healthz", "paced": False, "ends_at": 2}
        ]
    }
    (work / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    (work / "cli.toml").write_text('token = "not-used-by-healthz"\n', encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "LOADTEST_PLAN": str(work / "plan.json"),
        "LOADTEST_SAMPLES": str(work / "samples.csv"),
        "LOADTEST_CLI_CONFIG": str(work / "cli.toml"),
        "LOADTEST_CA_FILE": str(ca_file),
    }
    argv = [
        str(LOADTEST_PYTHON),
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        f"https://127.0.0.1:{port}",
        "--only-summary",
        "--exit-code-on-error",
        "0",
    ]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    with (work / "samples.csv").open(encoding="utf-8") as handle:
        return [row["status"] for row in csv.DictReader(handle)]


def test_the_load_generator_verifies_the_servers_certificate(tmp_path: Path) -> None:
    server, port = https_server(tmp_path / "server-pki")
    try:
        trusted = run_locust_healthz(tmp_path, port, tmp_path / "server-pki" / "ca.pem", "trusted")
        other_ca, _, _ = write_test_pki(tmp_path / "other-pki")
        untrusted = run_locust_healthz(tmp_path, port, other_ca, "untrusted")
    finally:
        server.shutdown()
    assert trusted
    assert set(trusted) == {"200"}
    # Signed by another CA: no request gets an answer (status 0: the TLS handshake failed).
    assert untrusted
    assert set(untrusted) == {"0"}

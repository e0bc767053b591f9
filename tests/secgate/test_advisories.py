"""Advisory data: which copy is used, its date, and fetching it safely (secgate.advisories).

Fetches go to an HTTPS server this module starts on 127.0.0.1 with a throwaway
CA: no test needs the internet.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import os
import shutil
import ssl
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from secgate import __main__ as cli
from secgate import advisories
from support import write_test_pki

FIXTURE_DB = Path(__file__).resolve().parent / "fixtures" / "advisory-db"
COMMIT = "ab" * 20  # low entropy: not a secret to detect-secrets
COMMIT_TIME = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.UTC)


# --- archives like GitHub's (git archive: a top directory, the commit id in a pax header) ---


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = int(COMMIT_TIME.timestamp())
    return info


def make_archive(extra: list[tuple[tarfile.TarInfo, bytes]] | None = None) -> bytes:
    """The fixture database as pypa/advisory-database's main.tar.gz would hold it."""
    buffer = io.BytesIO()
    top = "advisory-database-main"
    # git archive writes the commit id as a pax global header named "comment".
    pax = {"comment": COMMIT}
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers=pax
    ) as tar:
        tar.addfile(_member(f"{top}/", kind=tarfile.DIRTYPE))
        readme = b"# Python Packaging Advisory Database\n"
        tar.addfile(_member(f"{top}/README.md", readme), io.BytesIO(readme))
        for path in sorted(FIXTURE_DB.rglob("*")):
            if path.is_file() and path.name != "README.md":
                data = path.read_bytes()
                name = f"{top}/{path.relative_to(FIXTURE_DB).as_posix()}"
                tar.addfile(_member(name, data), io.BytesIO(data))
        for info, data in extra or []:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def test_unpack_keeps_advisories_and_licence_and_reads_commit(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_archive())
    unpacked = advisories.unpack_pypa_archive(archive, tmp_path / "out")
    assert unpacked.commit == COMMIT
    assert unpacked.data_date == dt.date(2026, 11, 30)
    assert unpacked.files == 19
    assert (tmp_path / "out" / "vulns" / "jinja2" / "PYSEC-2019-217.yaml").is_file()
    assert (tmp_path / "out" / "LICENSE").is_file()
    assert not (tmp_path / "out" / "README.md").exists()  # only what the scan reads


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("advisory-database-main/../../escaped.yaml", b"x"), "unsafe member path"),
        (_member("/etc/cron.d/evil", b"x"), "unsafe member path"),
        (_member("advisory-database-main/vulns/x/../../../../up.yaml", b"x"), "unsafe member"),
        (_member("advisory-database-main/vulns/evil/link.yaml", kind=tarfile.SYMTYPE), "a link"),
        (_member("advisory-database-main/vulns/evil/hard.yaml", kind=tarfile.LNKTYPE), "a link"),
        (_member("advisory-database-main/vulns/evil", kind=tarfile.SYMTYPE), "a link"),
        (_member("advisory-database-main/vulns/fifo.yaml", kind=tarfile.FIFOTYPE), "special"),
    ],
)
def test_unpack_refuses_traversal_and_links_and_writes_nothing(
    tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    if member.issym() or member.islnk():
        member.linkname = "/etc/passwd"
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_archive([(member, b"x" if member.isreg() else b"")]))
    with pytest.raises(advisories.FetchError, match=message):
        advisories.unpack_pypa_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "escaped.yaml").exists()


def test_unpack_ignores_links_outside_what_it_writes(tmp_path: Path) -> None:
    """The repository's other files are never written, links among them included."""
    link = _member("advisory-database-main/docs/link", kind=tarfile.SYMTYPE)
    link.linkname = "../../../../etc/passwd"
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_archive([(link, b"")]))
    advisories.unpack_pypa_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "docs").exists()


def test_unpack_caps_file_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(advisories, "MAX_FILE_BYTES", 1000)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_archive())
    with pytest.raises(advisories.FetchError, match="larger than 1000"):
        advisories.unpack_pypa_archive(archive, tmp_path / "out")


@pytest.mark.parametrize(
    ("cap", "value", "message"),
    [("MAX_MEMBERS", 5, "more than 5 members"), ("MAX_UNPACKED_BYTES", 5000, "more than 5000")],
)
def test_unpack_caps_members_and_total_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: str, value: int, message: str
) -> None:
    monkeypatch.setattr(advisories, cap, value)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_archive())
    with pytest.raises(advisories.FetchError, match=message):
        advisories.unpack_pypa_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unpack_refuses_an_archive_without_advisories(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(_member("top/README.md", b"hi"), io.BytesIO(b"hi"))
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(advisories.FetchError, match="holds no vulns"):
        advisories.unpack_pypa_archive(archive, tmp_path / "out")


def test_unpack_refuses_garbage(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(advisories.FetchError, match="refused archive"):
        advisories.unpack_pypa_archive(archive, tmp_path / "out")


# --- a local HTTPS server -----------------------------------------------------


class Server:
    """Serves ``routes`` (path -> (status, headers, body)) over HTTPS on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.ca, cert, key = write_test_pki(tmp, hostname="127.0.0.1")
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "pki")
    running.routes["/main.tar.gz"] = (200, {}, make_archive())
    yield running
    running.close()


def test_fetch_fills_the_cache_with_a_dated_copy(tmp_path: Path, server: Server) -> None:
    cache = tmp_path / "cache"
    url = server.base + "/main.tar.gz"
    data = advisories.fetch_into_cache(cache, NOW, url, server.client_context())
    assert (cache / "current").is_symlink()
    assert (cache / "current" / "vulns" / "redis" / "PYSEC-2023-73.yaml").is_file()
    assert (data.source, data.commit, data.data_date) == (url, COMMIT, dt.date(2026, 11, 30))
    assert data.fetched_at == NOW
    assert data.as_of == dt.date(2026, 12, 2)  # it was the database's head when fetched
    recorded = json.loads((cache / "current" / advisories.SOURCE_FILE).read_text("utf-8"))
    assert recorded["source_url"] == url
    assert recorded["commit"] == COMMIT
    assert recorded["fetched_at"] == "2026-12-02T09:30:00+00:00"
    assert len(recorded["archive_sha256"]) == 64
    # What the SCA stage then finds, with nothing named: the cache.
    located = advisories.locate(None, tmp_path, {advisories.ENV_CACHE: str(cache)})
    assert located.chosen_by == "cache"
    assert located.commit == COMMIT
    assert located.age_days(dt.date(2026, 12, 9)) == 7
    assert [p.name for p in cache.iterdir() if not p.name.startswith("pypa-")] == ["current"]


def test_a_second_fetch_swaps_current_and_a_failed_one_changes_nothing(
    tmp_path: Path, server: Server
) -> None:
    cache = tmp_path / "cache"
    url = server.base + "/main.tar.gz"
    first = advisories.fetch_into_cache(cache, NOW, url, server.client_context())
    later = NOW + dt.timedelta(days=1)
    second = advisories.fetch_into_cache(cache, later, url, server.client_context())
    assert first.path != second.path
    assert (cache / "current").resolve() == second.path
    server.routes["/main.tar.gz"] = (200, {}, b"not an archive")
    with pytest.raises(advisories.FetchError):
        advisories.fetch_into_cache(
            cache, later + dt.timedelta(days=1), url, server.client_context()
        )
    assert (cache / "current").resolve() == second.path
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no staging left


def test_fetch_refuses_http_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(advisories.FetchError, match="only https"):
        advisories.download(
            "http://127.0.0.1:9/x.tar.gz", tmp_path / "x", ssl.create_default_context()
        )


def test_fetch_refuses_a_redirect_to_http(tmp_path: Path, server: Server) -> None:
    server.routes["/redirect"] = (302, {"Location": "http://127.0.0.1:9/main.tar.gz"}, b"")
    with pytest.raises(advisories.FetchError, match="non-https"):
        advisories.download(server.base + "/redirect", tmp_path / "x", server.client_context())


def test_fetch_follows_a_redirect_to_https(tmp_path: Path, server: Server) -> None:
    server.routes["/redirect"] = (302, {"Location": server.base + "/main.tar.gz"}, b"")
    advisories.download(server.base + "/redirect", tmp_path / "x", server.client_context())
    assert (tmp_path / "x").read_bytes() == server.routes["/main.tar.gz"][2]


def test_fetch_caps_the_download(tmp_path: Path, server: Server) -> None:
    with pytest.raises(advisories.FetchError, match="more than the cap of 100"):
        advisories.download(
            server.base + "/main.tar.gz", tmp_path / "x", server.client_context(), max_bytes=100
        )


def test_fetch_verifies_the_server_certificate(tmp_path: Path, server: Server) -> None:
    """Our throwaway CA is not trusted by default: the fetch must fail."""
    with pytest.raises(advisories.FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        advisories.download(
            server.base + "/main.tar.gz", tmp_path / "x", ssl.create_default_context()
        )


def test_fetch_error_names_the_url(tmp_path: Path, server: Server) -> None:
    with pytest.raises(advisories.FetchError, match=r"cannot fetch .*/missing"):
        advisories.download(server.base + "/missing", tmp_path / "x", server.client_context())


# --- which copy, and its date --------------------------------------------------


def test_nothing_named_and_no_cache_says_how_to_get_data(tmp_path: Path) -> None:
    with pytest.raises(advisories.AdvisoryDataError) as raised:
        advisories.locate(None, tmp_path, {advisories.ENV_CACHE: str(tmp_path / "empty")})
    message = str(raised.value)
    assert "\n" not in message
    assert "make advisories" in message
    assert "SECGATE_ADVISORY_DB=DIR" in message


def test_named_copy_wins_over_the_cache_and_option_over_variable(tmp_path: Path) -> None:
    env = {advisories.ENV_DB: str(FIXTURE_DB), advisories.ENV_CACHE: str(tmp_path / "cache")}
    assert advisories.locate(None, tmp_path, env).chosen_by == "SECGATE_ADVISORY_DB"
    other = shutil.copytree(FIXTURE_DB, tmp_path / "other")
    assert advisories.locate(str(other), tmp_path, env).path == other


def test_relative_named_copy_is_relative_to_the_root(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_DB, tmp_path / "db")
    data = advisories.locate(None, tmp_path, {advisories.ENV_DB: "db"})
    assert data.path == (tmp_path / "db").resolve()


def test_source_md_dates_a_snapshot(tmp_path: Path) -> None:
    """How our build machines label their snapshot: SOURCE.md beside the copy."""
    shutil.copytree(FIXTURE_DB, tmp_path / "pypa")
    (tmp_path / "SOURCE.md").write_text(
        f"- Snapshot: commit {COMMIT}, dated 2024-10-10.\n", encoding="utf-8"
    )
    data = advisories.describe(tmp_path / "pypa", "SECGATE_ADVISORY_DB")
    assert (data.data_date, data.commit, data.fetched_at) == (dt.date(2024, 10, 10), COMMIT, None)
    assert data.as_of == dt.date(2024, 10, 10)
    assert data.age_days(dt.date(2026, 12, 2)) == 783
    assert "dated 2024-10-10" in data.describe()


def test_git_checkout_is_dated_by_its_commit(tmp_path: Path) -> None:
    root = shutil.copytree(FIXTURE_DB, tmp_path / "db")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    env = {**os.environ, "GIT_COMMITTER_DATE": "2025-01-02T03:04:05Z"}
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True, env=env)
    data = advisories.describe(root, "SECGATE_ADVISORY_DB")
    assert data.data_date == dt.date(2025, 1, 2)
    assert data.dated_by == "git commit date"
    assert len(data.commit or "") == 40


def test_copy_without_any_record_is_dated_by_its_newest_advisory() -> None:
    data = advisories.describe(FIXTURE_DB, "option advisory_db")
    assert data.data_date == dt.date(2026, 9, 10)
    assert data.dated_by == "newest 'modified' field of any advisory"


def test_malformed_source_record_is_an_error(tmp_path: Path) -> None:
    root = shutil.copytree(FIXTURE_DB, tmp_path / "db")
    (root / advisories.SOURCE_FILE).write_text('{"fetched_at": "yesterday"}', encoding="utf-8")
    with pytest.raises(advisories.AdvisoryDataError, match="unreadable"):
        advisories.describe(root, "cache")


# --- `secgate advisories`: one line, whatever happens --------------------------


def test_cli_offline_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {advisories.ENV_DB: str(FIXTURE_DB), advisories.ENV_CACHE: str(tmp_path / "c")}
    assert cli._advisories(tmp_path, None, advisories.PYPA_ARCHIVE_URL, env, NOW) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    assert out.startswith("secgate advisories: offline: nothing fetched; using the local copy ")
    assert f"SECGATE_ADVISORY_DB={FIXTURE_DB}" in out
    assert "dated 2026-09-10" in out
    assert "83 days old" in out
    assert not (tmp_path / "c").exists()


def test_cli_offline_with_a_wrong_directory_says_how_to_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {advisories.ENV_DB: str(tmp_path / "nowhere")}
    assert cli._advisories(tmp_path, None, advisories.PYPA_ARCHIVE_URL, env, NOW) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "holds no advisory database" in err
    assert "point it at a copy of the PyPA advisory database" in err


def test_cli_cannot_fetch_and_has_no_copy_says_how_to_supply_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {advisories.ENV_CACHE: str(tmp_path / "c")}
    url = "https://127.0.0.1:9/main.tar.gz"  # nothing listens on the discard port
    assert cli._advisories(tmp_path, 24, url, env, NOW) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"secgate advisories: cannot fetch {url}")
    assert "Offline? Set SECGATE_ADVISORY_DB=DIR" in err


def test_cli_fetches_then_reuses_a_recent_copy_then_falls_back_to_it(
    tmp_path: Path,
    server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca))  # the default context trusts our CA
    env = {advisories.ENV_CACHE: str(tmp_path / "c")}
    url = server.base + "/main.tar.gz"
    assert cli._advisories(tmp_path, None, url, env, NOW) == 0
    assert capsys.readouterr().out.startswith("secgate advisories: fetched into ")
    assert cli._advisories(tmp_path, 24, url, env, NOW + dt.timedelta(hours=3)) == 0
    assert "cached copy is 3 h old, not fetched again" in capsys.readouterr().out
    server.routes.clear()
    assert cli._advisories(tmp_path, 24, url, env, NOW + dt.timedelta(days=2)) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "going on with the cached copy" in err

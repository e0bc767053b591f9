"""Advisory data for the SCA stage: which copy is used, how old it is, and fetching it.

There are exactly two places advisory data comes from, and nothing is guessed:

1. **A local copy the user names**: ``-o advisory_db=DIR`` or ``SECGATE_ADVISORY_DB=DIR``
   (air-gapped machines). It is read, never fetched or changed.
2. **The cache** that ``secgate advisories`` (``make advisories``) fills from the
   PyPA advisory database's GitHub archive: ``$SECGATE_ADVISORY_CACHE``, else
   ``${XDG_CACHE_HOME:-~/.cache}/secgate/advisories``. Outside the repository, so a
   checkout never carries data that silently grows old.

Every copy is described by an :class:`AdvisoryData`: where it came from, the
commit and date of the data, and when it was fetched. Its *age* is counted from
the moment it was last known to be current: the fetch time for a fetched copy
(it was the database's head then), otherwise the data's own date (a copy taken
later is counted as older than it is: the safe side). The gate compares that
age with ``security/policy.yml`` (:mod:`secgate.freshness`).

Fetching is defensive because the archive is input from the network: https
only (the opener has no handler for any other scheme, redirects included), a
size cap on the download and on what is unpacked, only regular files under
``vulns/`` plus ``LICENSE`` are written, an archive with a path that climbs out
(``..``, absolute) or a link where a file is expected is refused whole, and the
new copy replaces the old one by an atomic symlink swap, so a reader sees the
old copy or the new one, never half of either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess  # git with a fixed argument list
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path, PurePosixPath
from typing import IO, Any

from secgate import osv

PYPA_ARCHIVE_URL = "https://github.com/pypa/advisory-database/archive/refs/heads/main.tar.gz"
ENV_DB = "SECGATE_ADVISORY_DB"
ENV_CACHE = "SECGATE_ADVISORY_CACHE"
SOURCE_FILE = "secgate-source.json"  # provenance, written beside vulns/ in every fetched copy
CURRENT = "current"  # symlink in the cache directory to the copy in use
MISSING_HELP = (
    "no advisory data: run `make advisories` to fetch the PyPA advisory database (online), "
    f"or set {ENV_DB}=DIR to a local copy of it (air-gapped)"
)

MAX_DOWNLOAD_BYTES = 128 * 1024 * 1024  # the archive was ~10 MB in 2026
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_MEMBERS = 300_000
FETCH_TIMEOUT_SECONDS = 60
_CHUNK = 1024 * 1024
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class AdvisoryDataError(Exception):
    """No usable advisory data; the message is one line saying what to do."""


class FetchError(AdvisoryDataError):
    """Fetching or unpacking the archive failed; nothing in the cache was changed."""


@dataclass(frozen=True)
class AdvisoryData:
    """One copy of the advisory database and what is known about its age."""

    path: Path  # the directory holding vulns/
    chosen_by: str  # "SECGATE_ADVISORY_DB", "option advisory_db" or "cache"
    source: str  # the URL it was fetched from, or the local directory
    commit: str | None
    data_date: dt.date | None  # date of the commit or snapshot the data is
    dated_by: str  # how data_date was learnt
    fetched_at: dt.datetime | None  # None for a copy we did not fetch

    @property
    def as_of(self) -> dt.date | None:
        """The last day the data is known to have been current (see the module docstring)."""
        if self.fetched_at is not None:
            return self.fetched_at.astimezone(dt.UTC).date()
        return self.data_date

    def age_days(self, today: dt.date) -> int | None:
        """Whole days since :attr:`as_of`; None when the data has no known date."""
        as_of = self.as_of
        return None if as_of is None else (today - as_of).days

    def describe(self) -> str:
        """One line for people: what the data is and where its date comes from."""
        commit = f" commit {self.commit[:12]}" if self.commit else ""
        dated = f"dated {self.data_date}" if self.data_date else "of unknown date"
        fetched = (
            f", fetched {self.fetched_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
            if self.fetched_at
            else ""
        )
        return f"{self.source}{commit}, {dated} ({self.dated_by}){fetched}"

    def metadata(self) -> dict[str, str]:
        """The SCA stage's report metadata; :mod:`secgate.freshness` reads it back."""
        return {
            "advisory_source": self.source,
            "advisory_chosen_by": self.chosen_by,
            "advisory_commit": self.commit or "",
            "advisory_data_date": self.data_date.isoformat() if self.data_date else "",
            "advisory_dated_by": self.dated_by,
            "advisory_fetched_at": self.fetched_at.isoformat() if self.fetched_at else "",
            "advisory_as_of": self.as_of.isoformat() if self.as_of else "",
            "advisory_description": self.describe(),
        }


# --- where the data is ------------------------------------------------------


def cache_dir(env: Mapping[str, str]) -> Path:
    """``$SECGATE_ADVISORY_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/secgate/advisories``."""
    if env.get(ENV_CACHE):
        return Path(env[ENV_CACHE]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "secgate" / "advisories"


def named_copy(option: str | None, env: Mapping[str, str]) -> tuple[str, str] | None:
    """The local copy the user named (``(value, which setting)``), or None."""
    if option:
        return option, "option advisory_db"
    if env.get(ENV_DB):
        return env[ENV_DB], ENV_DB
    return None


def locate(option: str | None, root: Path, env: Mapping[str, str]) -> AdvisoryData:
    """The copy to scan with: a named local copy, else the cache; never anything else.

    Relative paths are relative to ``root`` (the scanned tree). Raises
    AdvisoryDataError with a one-line explanation when there is none.
    """
    named = named_copy(option, env)
    if named is not None:
        raw, chosen_by = named
        path = (root / raw).resolve()
        if not (path / "vulns").is_dir():
            raise AdvisoryDataError(
                f"{chosen_by}={raw} holds no advisory database (expected {path}/vulns/): "
                "point it at a copy of the PyPA advisory database"
            )
        return describe(path, chosen_by)
    current = cache_dir(env) / CURRENT
    if not (current / "vulns").is_dir():
        raise AdvisoryDataError(MISSING_HELP)
    return describe(current.resolve(), "cache")


def describe(path: Path, chosen_by: str) -> AdvisoryData:
    """What is known about the copy at ``path``, most reliable source first.

    A ``secgate-source.json`` we wrote when fetching; else a SOURCE.md beside or
    above the copy saying "dated YYYY-MM-DD" (how our build machines' snapshot is
    labelled); else the commit date when it is a git checkout; else the newest
    ``modified`` field of any advisory (the data is at least that old).
    """
    recorded = _read_source_file(path)
    if recorded is not None:
        return _from_source_file(path, chosen_by, recorded)
    local = str(path)
    found = _dated_by_source_md(path) or _dated_by_git(path)
    if found is not None:
        date, commit, how = found
        return AdvisoryData(path, chosen_by, local, commit, date, how, None)
    newest = osv.AdvisoryDb(path).newest_modified()
    how = "newest 'modified' field of any advisory"
    return AdvisoryData(path, chosen_by, local, None, newest, how, None)


def _read_source_file(path: Path) -> dict[str, Any] | None:
    source = path / SOURCE_FILE
    if not source.is_file():
        return None
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdvisoryDataError(f"unreadable {source}: {exc}") from exc
    if not isinstance(data, dict):
        raise AdvisoryDataError(f"unreadable {source}: not a JSON object")
    return data


def _from_source_file(path: Path, chosen_by: str, data: dict[str, Any]) -> AdvisoryData:
    where = path / SOURCE_FILE
    try:
        fetched_at = dt.datetime.fromisoformat(str(data["fetched_at"]))
        data_date = dt.date.fromisoformat(str(data["data_date"])) if data["data_date"] else None
        commit = str(data["commit"]) if data["commit"] else None
        source = str(data["source_url"])
    except (KeyError, ValueError) as exc:
        raise AdvisoryDataError(f"unreadable {where}: {exc!r}") from exc
    if fetched_at.tzinfo is None:
        raise AdvisoryDataError(f"unreadable {where}: fetched_at has no time zone")
    return AdvisoryData(path, chosen_by, source, commit, data_date, "archive commit", fetched_at)


def _dated_by_source_md(path: Path) -> tuple[dt.date, str | None, str] | None:
    for source in (path / "SOURCE.md", path.parent / "SOURCE.md"):
        if not source.is_file():
            continue
        text = source.read_text(encoding="utf-8")
        date = re.search(r"dated (\d{4}-\d{2}-\d{2})", text)
        commit = re.search(r"commit ([0-9a-f]{40})", text)
        if date:
            return (
                dt.date.fromisoformat(date.group(1)),
                commit.group(1) if commit else None,
                f"stated in {source}",
            )
    return None


def _dated_by_git(path: Path) -> tuple[dt.date, str | None, str] | None:
    git = shutil.which("git")
    if git is None or not (path / ".git").exists():
        return None
    done = subprocess.run(  # fixed argv, no shell
        [git, "-C", str(path), "log", "-1", "--format=%cs %H"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    date, _, commit = done.stdout.strip().partition(" ")
    if done.returncode != 0 or not date:
        return None
    return dt.date.fromisoformat(date), commit or None, "git commit date"


# --- fetching ---------------------------------------------------------------


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another https URL (GitHub sends one to codeload)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not newurl.startswith("https://"):
            raise FetchError(f"refused a redirect to a non-https URL: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(context: ssl.SSLContext) -> urllib.request.OpenerDirector:
    """An opener that can only speak https (no http, file or ftp handler at all)."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),  # HTTPS_PROXY / NO_PROXY, as every other tool here
        urllib.request.HTTPSHandler(context=context),
        _HttpsOnlyRedirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    opener.addheaders = [("User-Agent", "secgate-advisories")]
    return opener


def download(
    url: str, target: Path, context: ssl.SSLContext, max_bytes: int = MAX_DOWNLOAD_BYTES
) -> str:
    """Write ``url`` to ``target`` (at most ``max_bytes``); return its SHA-256."""
    if not url.startswith("https://"):
        raise FetchError(f"refusing to fetch {url}: only https URLs are allowed")
    digest = hashlib.sha256()
    written = 0
    try:
        with _opener(context).open(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{url} is {declared} bytes, more than the cap of {max_bytes}")
            with target.open("xb") as out:
                while chunk := response.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FetchError(f"{url} sent more than the cap of {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"cannot fetch {url}: {reason}") from exc
    return digest.hexdigest()


@dataclass(frozen=True)
class Unpacked:
    """What :func:`unpack_pypa_archive` learnt from the archive."""

    commit: str | None  # git archive's commit id (pax header "comment")
    data_date: dt.date | None  # the newest member time: git archive sets the commit time
    files: int


def _member_path(name: str) -> PurePosixPath:
    """The archive path without its top directory; refuses names that climb out."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise FetchError(f"refused archive: unsafe member path {name!r}")
    return PurePosixPath(*path.parts[1:])


def _wanted(relative: PurePosixPath) -> bool:
    """Only advisories (regular files) and the licence are written, nothing else."""
    parts = relative.parts
    if parts == ("LICENSE",):
        return True
    return len(parts) >= 3 and parts[0] == "vulns" and relative.suffix == ".yaml"


def unpack_pypa_archive(archive: Path, dest: Path) -> Unpacked:
    """Unpack the advisories of a pypa/advisory-database tarball into ``dest``.

    Every member is checked before anything is written: a path with ``..`` or
    an absolute one anywhere refuses the archive, and so does a link, device or
    other non-regular member among those we would write. Files are written by
    us, not by tarfile's extract, with exclusive creation under ``dest``.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            chosen = _check_members(tar)
            commit = str(tar.pax_headers.get("comment", "")) or None
            dest.mkdir(parents=True, exist_ok=False)
            for member, relative in chosen:
                _write_member(tar, member, dest / Path(*relative.parts), dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchError(f"refused archive {archive.name}: {exc}") from exc
    times = [member.mtime for member, _ in chosen]
    newest = dt.datetime.fromtimestamp(max(times), dt.UTC).date() if times else None
    return Unpacked(
        commit if commit and _COMMIT.match(commit) else None,
        newest,
        sum(1 for _, rel in chosen if rel.parts[0] == "vulns"),
    )


def _check_members(tar: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    """The members to write; raises FetchError if any member makes the archive unsafe.

    Members are read one by one and counted, and the declared sizes of *all*
    members are added up, so a hostile archive is refused before it costs much
    memory or time (the caps also bound how much gzip data is decompressed).
    """
    chosen: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
    total = 0
    for count, member in enumerate(tar, 1):
        if count > MAX_MEMBERS:
            raise FetchError(f"refused archive: more than {MAX_MEMBERS} members")
        total += member.size
        if total > MAX_UNPACKED_BYTES:
            raise FetchError(f"refused archive: unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        relative = _member_path(member.name)
        ours = relative.parts[:1] in (("vulns",), ("LICENSE",))
        if ours and not (member.isreg() or member.isdir()):
            raise FetchError(f"refused archive: {member.name} is a link or special file")
        if member.isdir() or not _wanted(relative):
            continue
        if member.size > MAX_FILE_BYTES:
            raise FetchError(f"refused archive: {member.name} is larger than {MAX_FILE_BYTES}")
        chosen.append((member, relative))
    if not any(rel.parts[0] == "vulns" for _, rel in chosen):
        raise FetchError("refused archive: it holds no vulns/<package>/*.yaml advisory")
    return chosen


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, dest: Path) -> None:
    if not target.resolve().is_relative_to(dest.resolve()):  # belt and braces
        raise FetchError(f"refused archive: {member.name} resolves outside {dest}")
    source = tar.extractfile(member)
    if source is None:
        raise FetchError(f"refused archive: {member.name} has no content")
    target.parent.mkdir(parents=True, exist_ok=True)
    with source, target.open("xb") as out:
        shutil.copyfileobj(source, out)


def fetch_into_cache(
    cache: Path,
    now: dt.datetime,
    url: str = PYPA_ARCHIVE_URL,
    context: ssl.SSLContext | None = None,
) -> AdvisoryData:
    """Fetch the archive, unpack it beside the cache's copies, then switch ``current`` to it.

    Everything happens in a staging directory inside ``cache`` (same file
    system, so renames are atomic); ``current`` is replaced by ``os.replace`` of
    a symlink. On any failure the staging directory is removed and the copy in
    use is untouched. The previous copy is kept for a scan that may still read it.
    """
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
    try:
        sha256 = download(url, staging / "archive.tar.gz", context or ssl.create_default_context())
        unpacked = unpack_pypa_archive(staging / "archive.tar.gz", staging / "data")
        record = {
            "source_url": url,
            "commit": unpacked.commit,
            "data_date": unpacked.data_date.isoformat() if unpacked.data_date else None,
            "fetched_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "archive_sha256": sha256,
            "advisory_files": unpacked.files,
        }
        (staging / "data" / SOURCE_FILE).write_text(
            json.dumps(record, indent=2) + "\n", encoding="utf-8"
        )
        commit = (unpacked.commit or "nocommit")[:12]
        final = cache / f"pypa-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{commit}"
        (staging / "data").rename(final)
        previous = _switch_current(cache, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_old_copies(cache, keep={final.name, previous})
    return describe(final, "cache")


def _switch_current(cache: Path, final: Path) -> str | None:
    """Point ``cache/current`` at ``final`` atomically; return the name it pointed to."""
    current = cache / CURRENT
    previous = os.readlink(current) if current.is_symlink() else None
    link = cache / f".{CURRENT}-{final.name}"
    link.symlink_to(final.name, target_is_directory=True)
    os.replace(link, current)
    return previous


def _remove_old_copies(cache: Path, keep: set[str | None]) -> None:
    for child in cache.iterdir():
        if child.name.startswith("pypa-") and child.name not in keep and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)

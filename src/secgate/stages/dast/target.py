"""What the DAST stage may attack: one HTTPS server on 127.0.0.1, verified, maybe with a header.

Only ``https://127.0.0.1[:port]`` is accepted: a DAST tool pointed elsewhere
is an attack on someone else's system. TLS is always verified against
``ca_file``. The auth header comes from ``auth_header`` or, keeping the
token off every secgate command line, from the file ``auth_header_file``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from secgate.model import ScanContext

STAGE = "dast"  # the stage every DAST finding is filed under, whichever tool found it


class TargetRefused(ValueError):
    """The DAST target is not the local HTTPS server we are allowed to attack."""


@dataclass(frozen=True)
class Target:
    """The one server this stage may attack, and how to talk to it."""

    base_url: str  # https://127.0.0.1:PORT[/prefix], no trailing slash
    ca_file: str  # CA bundle that verifies the server certificate
    auth: tuple[str, str] | None = field(repr=False)  # (header name, value): no repr, no log


def check_target(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash if it is ``https://127.0.0.1[:port][/path]``.

    Anything else (another host, a name that might resolve anywhere, userinfo,
    a query) is refused: DAST tools send attack payloads.
    """
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise TargetRefused(f"malformed port in DAST target {base_url!r}") from exc
    if parts.scheme != "https" or parts.hostname != "127.0.0.1":
        raise TargetRefused(f"DAST only targets https://127.0.0.1, not {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise TargetRefused(f"DAST target must be a plain base URL: {base_url!r}")
    return base_url.rstrip("/")


def _auth(raw: str) -> tuple[str, str] | None:
    if not raw:
        return None
    name, sep, value = raw.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()) or not value.strip():
        raise TargetRefused("auth_header must look like 'Name: value'")
    return name.strip(), value.strip()


def target_from(ctx: ScanContext) -> Target:
    """Validate the options that say what to attack; raise TargetRefused otherwise."""
    base_url = check_target(ctx.options.get("base_url", ""))
    ca_file = ctx.root / ctx.options.get("ca_file", "")
    if not ctx.options.get("ca_file") or not ca_file.is_file():
        raise TargetRefused(f"ca_file {str(ca_file)!r} is not a file: TLS is always verified")
    return Target(base_url, str(ca_file), _auth(_auth_header(ctx)))


def _auth_header(ctx: ScanContext) -> str:
    """``auth_header``, or the content of ``auth_header_file`` (never quoted in an error)."""
    header_file = ctx.options.get("auth_header_file", "")
    if not header_file:
        return ctx.options.get("auth_header", "")
    if ctx.options.get("auth_header"):
        raise TargetRefused("give auth_header or auth_header_file, not both")
    try:
        return (ctx.root / header_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TargetRefused(
            f"cannot read auth_header_file {header_file!r}: {exc.strerror}"
        ) from None


def origin(base_url: str) -> str:
    """``https://127.0.0.1:PORT`` of a base URL (wapiti reports paths from the server root)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"

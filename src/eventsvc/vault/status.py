"""Telling the workers whether the lease keeper can reach Vault, through one file.

The keeper (a sibling of the workers, see :mod:`eventsvc.vault.keeper`) is
the only one that knows when a refresh fails; /readyz answers in the workers.
So the keeper writes ``vault-status`` in the session's 0700 runtime directory
(0600, atomic: :func:`write_private_file`, like the token file) when the
state changes: ``{"vault": "ok"}``, or ``{"vault": "unreachable", "since":
..., "last_error": ...}`` from the first failed refresh until the next one
that succeeds. ``last_error`` is the exception's class name only: a message
may hold an address or a path, never worth the risk of a token.

No file means no failure since the keeper started. /readyz reads the file on
every probe (one small read every 2 s per instance).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eventsvc.files import write_private_file

log = logging.getLogger(__name__)

STATUS_FILE_NAME = "vault-status"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class VaultStatus:
    """What the keeper last saw: ok, or unreachable since a moment, and why (a class name)."""

    reachable: bool
    since: datetime | None = None
    last_error: str | None = None

    def to_json(self) -> str:
        if self.reachable:
            return json.dumps({"vault": "ok"})
        since = None if self.since is None else f"{self.since:{_TIME_FORMAT}}"
        return json.dumps({"vault": "unreachable", "since": since, "last_error": self.last_error})


OK = VaultStatus(reachable=True)


def read_status(path: Path) -> VaultStatus | None:
    """The status in ``path``: OK when there is no file, None when it cannot be understood."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return OK
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("vault") not in {"ok", "unreachable"}:
        return None
    if found["vault"] == "ok":
        return OK
    try:
        since = datetime.strptime(str(found.get("since")), _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        since = None
    error = found.get("last_error")
    return VaultStatus(reachable=False, since=since, last_error=str(error) if error else None)


class StatusFile:
    """The keeper's side: record each refresh's outcome, write the file when the state changes.

    A failure to write is logged and forgotten: the keeper's job is the
    credentials, and the next change tries again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._current = OK

    def succeeded(self) -> None:
        if not self._current.reachable:
            log.info("vault: reachable again")
            self._write(OK)

    def failed(self, error: BaseException) -> None:
        name = type(error).__name__
        if self._current.reachable or self._current.last_error != name:
            since = self._current.since or datetime.now(UTC).replace(microsecond=0)
            self._write(VaultStatus(reachable=False, since=since, last_error=name))

    def _write(self, status: VaultStatus) -> None:
        try:
            write_private_file(self.path, status.to_json())
        except OSError as exc:
            log.warning("vault: could not write %s: %s", self.path.name, exc.strerror)
            return
        self._current = status

"""Handing the session's current Vault token to the gunicorn workers, through one file.

Workers sign and anchor audit checkpoints with the service's token, but they
are forked from the master, and the token belongs to the lease keeper (a
sibling process). When the keeper can no longer renew the token (max TTL,
or the token was revoked) it logs in again and revokes the old one; a worker
forked earlier would keep signing with a dead token, and its checkpoints
would be neither signed nor anchored.

So the session writes its current token to ``vault-token`` in its 0700
runtime directory at every login (0600, atomic: :func:`write_private_file`),
and :class:`TokenFileClients` gives each worker a client on the token in
that file now: read before every request (a checkpoint every 30 s per
worker is one small read), rebuilt only when the token changed.
:func:`write_with_current_token` retries once when Vault refused a token
that has been replaced since (the keeper revokes the old token right after
writing the new one). The file goes with the runtime directory at shutdown,
the fail-closed exits included.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from eventsvc.settings import VaultSettings
from eventsvc.vault.errors import VaultError
from eventsvc.vault.login import new_client, read_secret_file

TOKEN_FILE_NAME = "vault-token"  # a file name, not a token (S105 reviewed in pyproject.toml)
REQUEST_FAILURES = (hvac.exceptions.VaultError, requests.exceptions.RequestException, VaultError)
"""What a worker's request may raise: Vault's refusal, the network, or no token file."""


class TokenFileClients:
    """A callable: the hvac client for the token in ``token_file`` now (one per process).

    Never logs, repr()s or raises with the token: a missing or empty file is
    a :class:`~eventsvc.vault.errors.VaultError` naming the file only.
    """

    def __init__(self, settings: VaultSettings, token_file: Path) -> None:
        self._settings = settings
        self._token_file = token_file
        self._client: hvac.Client | None = None
        self._token = ""
        self._pid = 0

    def __repr__(self) -> str:
        return f"TokenFileClients({str(self._token_file)!r})"

    def __call__(self) -> hvac.Client:
        token = read_secret_file(self._token_file, "Vault token")
        if self._client is None or token != self._token or self._pid != os.getpid():
            # A client from before a fork shares its connection pool: never reuse it.
            self._client = new_client(self._settings, token)
            self._token = token
            self._pid = os.getpid()
        return self._client


def write_with_current_token(
    client_factory: Callable[[], hvac.Client], path: str, data: dict[str, Any]
) -> Any:
    """POST ``data`` to ``path``; on 403, once more if the factory has a new client since.

    A 403 right after the keeper's re-login means our token was the old one,
    revoked between our read of the file and the request: the retry uses the
    new one. A 403 on an unchanged token is a real refusal and is raised.
    """
    client = client_factory()
    try:
        return client.write_data(path, data=data)
    except hvac.exceptions.Forbidden:
        fresh = client_factory()
        if fresh is client:
            raise
        return fresh.write_data(path, data=data)

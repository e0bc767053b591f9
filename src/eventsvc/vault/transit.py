"""Signing audit checkpoints with Vault's transit engine: the key never leaves Vault.

The service's policy grants ``update`` on ``transit/sign/<key>`` and nothing
else on transit, so the service can sign but cannot read, export, back up or
reconfigure the key. Whoever verifies needs only the public key
(``transit/keys/<key>``, which the auditor's policy may read).

A signer is made in the gunicorn master and inherited by the workers. Its
client factory is asked for a client before every signature: with the
service's :class:`~eventsvc.vault.tokenfile.TokenFileClients`, that is a
client of this process on the token the lease keeper holds now, so a worker
forked before a re-login signs with the new token.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import hvac

from eventsvc.audit.signing import CheckpointSigningFailed
from eventsvc.vault.tokenfile import REQUEST_FAILURES, write_with_current_token

TRANSIT_MOUNT = "transit"
CHECKPOINT_KEY = "eventsvc-audit-checkpoint"


class TransitCheckpointSigner:
    """Signs checkpoint bytes with ``<mount>/sign/<key>`` (Ed25519); returns ``vault:vN:...``."""

    def __init__(
        self,
        client_factory: Callable[[], hvac.Client],
        *,
        mount: str = TRANSIT_MOUNT,
        key: str = CHECKPOINT_KEY,
    ) -> None:
        self._client_factory = client_factory
        self._path = f"{mount}/sign/{key}"

    def __repr__(self) -> str:
        return f"TransitCheckpointSigner({self._path!r})"

    def sign(self, message: bytes) -> str:
        """The signature, or CheckpointSigningFailed naming the path (never the token)."""
        try:
            response = write_with_current_token(
                self._client_factory,
                self._path,
                {"input": base64.b64encode(message).decode("ascii")},
            )
        except REQUEST_FAILURES as exc:
            raise CheckpointSigningFailed(
                f"vault refused to sign at {self._path}: {type(exc).__name__}"
            ) from None
        signature = response["data"]["signature"]
        if not isinstance(signature, str):
            raise CheckpointSigningFailed(f"vault returned no signature from {self._path}")
        return signature

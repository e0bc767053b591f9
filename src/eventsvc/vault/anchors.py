"""Checkpoint anchors in Vault: evidence of the audit trail that survives losing MongoDB.

Every checkpoint a writer stores in MongoDB is also written, as is (signed by
transit), to ``<mount>/data/eventsvc/<writer_id>/<number>`` in a KV v2 mount
of its own. The service's policy grants ``create`` there and nothing else:
``create`` succeeds only for a path that does not exist yet, so the service
can append an anchor but never overwrite, delete, destroy or re-configure one
(no ``update``, no ``delete``, no ``metadata``, no ``destroy``). Whoever
controls MongoDB, even its admin, cannot touch them.

``eventsvc audit verify --anchors`` (auditor: list and read) takes each
writer's highest anchored checkpoint and checks the trail against it, so a
database emptied of every record and checkpoint is reported, writer by
writer. What no anchor can cover: records after a writer's last checkpoint
(at most 30 s or 100 records; a worker's exit writes one more).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import hvac

from eventsvc.audit.signing import CheckpointSigningFailed
from eventsvc.vault.tokenfile import REQUEST_FAILURES, write_with_current_token

ANCHOR_MOUNT = "audit-anchors"
ANCHOR_PREFIX = "eventsvc"


class VaultCheckpointAnchor:
    """Appends a stored checkpoint to ``<mount>/data/eventsvc/<writer_id>/<number>``, once."""

    def __init__(
        self, client_factory: Callable[[], hvac.Client], *, mount: str = ANCHOR_MOUNT
    ) -> None:
        self._client_factory = client_factory
        self._mount = mount

    def __repr__(self) -> str:
        return f"VaultCheckpointAnchor({self._mount!r})"

    def append(self, checkpoint: Mapping[str, Any]) -> None:
        """Write the checkpoint (wire form) once; CheckpointSigningFailed if Vault refuses.

        A client is asked of the factory for every anchor (see
        :mod:`eventsvc.vault.tokenfile`: the token may have changed since the last).
        """
        path = (
            f"{self._mount}/data/{ANCHOR_PREFIX}/{checkpoint['writer_id']}/{checkpoint['number']}"
        )
        try:
            write_with_current_token(
                self._client_factory, path, {"data": dict(checkpoint), "options": {"cas": 0}}
            )
        except REQUEST_FAILURES as exc:
            raise CheckpointSigningFailed(
                f"vault refused the anchor at {path}: {type(exc).__name__}"
            ) from None


def latest_anchors(
    list_keys: Callable[[str], list[str]],
    read_data: Callable[[str], Mapping[str, Any]],
    *,
    mount: str = ANCHOR_MOUNT,
) -> list[dict[str, Any]]:
    """Each writer's highest-numbered anchored checkpoint (the auditor's list + read).

    Anchors are cumulative (a checkpoint signs every chain head of its writer
    and names the one before it), so the last one per writer is all the
    evidence needed; older ones stay in Vault for whoever wants to look.
    """
    found: list[dict[str, Any]] = []
    for writer in sorted(list_keys(f"{mount}/metadata/{ANCHOR_PREFIX}/")):
        writer_id = writer.rstrip("/")
        numbers = [int(key) for key in list_keys(f"{mount}/metadata/{ANCHOR_PREFIX}/{writer}")]
        if not numbers:
            continue
        path = f"{mount}/data/{ANCHOR_PREFIX}/{writer_id}/{max(numbers)}"
        found.append(dict(read_data(path)))
    return found

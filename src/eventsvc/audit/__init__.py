"""The tamper-evident audit trail: hash-chained records and signed checkpoints.

Every state change and every denied request gets one record, written in the
same MongoDB transaction as the change. One module per concern:

- :mod:`~eventsvc.audit.record`: what a record is; its fields, canonical JSON,
  hash and checkpoint signature (no I/O).
- :mod:`~eventsvc.audit.schema`: MongoDB validators and indexes of the
  ``audit`` and ``audit_checkpoints`` collections.
- :mod:`~eventsvc.audit.log`: the writer (:class:`AuditLog`, one chain per
  thread, checkpoints) and the thread that checkpoints periodically.
- :mod:`~eventsvc.audit.verify`: the chain walk that names the first broken
  link; imports no pymongo, so ``eventsvc audit verify`` needs no database driver.
- :mod:`~eventsvc.audit.export`: records and checkpoints in a time range,
  JSON-ready, with their proof.

The names below are re-exported so that ``from eventsvc.audit import
AuditLog`` works. They are loaded on first use, not when this package is
imported: Python runs this file before any of its modules, and importing
:mod:`eventsvc.audit.verify` must not pull in pymongo through
:mod:`~eventsvc.audit.log`. The functions ``verify`` and ``export`` are not
re-exported because they share their module's name (the package attribute
``eventsvc.audit.verify`` is the module): import them from their modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names as _OWNERS below, for type checkers
    from eventsvc.audit.log import AuditLog, start_checkpoints
    from eventsvc.audit.record import (
        AUDIT,
        AUDIT_CHECKPOINTS,
        GENESIS,
        GENESIS_HASH,
        AuditEntry,
        AuditRecord,
        ChainHead,
        canonical_json,
        checkpoint_signature,
        record_hash,
        state_digest,
    )
    from eventsvc.audit.verify import (
        ChainReport,
        VerifyReport,
        checkpoint_verdicts,
        read_checkpoints,
        verify_chain,
    )

# Re-exported name -> the module of this package that owns it.
_OWNERS = {
    "AuditLog": "log",
    "start_checkpoints": "log",
    "AUDIT": "record",
    "AUDIT_CHECKPOINTS": "record",
    "GENESIS": "record",
    "GENESIS_HASH": "record",
    "AuditEntry": "record",
    "AuditRecord": "record",
    "ChainHead": "record",
    "canonical_json": "record",
    "checkpoint_signature": "record",
    "record_hash": "record",
    "state_digest": "record",
    "ChainReport": "verify",
    "VerifyReport": "verify",
    "checkpoint_verdicts": "verify",
    "read_checkpoints": "verify",
    "verify_chain": "verify",
}

__all__ = [
    "AUDIT",
    "AUDIT_CHECKPOINTS",
    "GENESIS",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "ChainHead",
    "ChainReport",
    "VerifyReport",
    "canonical_json",
    "checkpoint_signature",
    "checkpoint_verdicts",
    "read_checkpoints",
    "record_hash",
    "start_checkpoints",
    "state_digest",
    "verify_chain",
]


def __getattr__(name: str) -> object:
    """Load a re-exported name from the module that owns it (PEP 562)."""
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{owner}"), name)

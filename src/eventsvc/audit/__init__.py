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

Import names from the module that owns them; this file only says where they are.
"""

"""The Vault (or OpenBao) lifecycle of one eventsvc process.

What each module owns, in reading order:

- :mod:`eventsvc.settings` (``VaultSettings``): where Vault is and what to ask
  it for, the ``EVENTSVC_VAULT_*`` variables; the session uses it as it is.
- :mod:`~eventsvc.vault.errors`: the error types, and how hvac/requests
  failures become one-line messages without secrets.
- :mod:`~eventsvc.vault.login`: the https-only client, and what an AppRole
  (wrapped secret_id) or Kubernetes login sends.
- :mod:`~eventsvc.vault.issued`: what a session obtains (token state,
  MongoDB credential, HTTPS certificate) and when each is due for a refresh.
- :mod:`~eventsvc.vault.session`: :class:`VaultSession`: log in, renew,
  issue the MongoDB credential and the HTTPS certificate, revoke at shutdown.
- :mod:`~eventsvc.vault.tokenfile`: the current token, handed to the workers
  through one 0600 file (they sign and anchor checkpoints with it).
- :mod:`~eventsvc.vault.keeper`: the lease keeper loop (renew, log in again,
  re-issue, with backoff) and the process that runs it beside gunicorn.
- :mod:`~eventsvc.vault.status`: whether the keeper reaches Vault, told to the
  workers' /readyz through one 0600 file (``vault-status``).

Import names from the module that owns them; this file only says where they are.
"""

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
- :mod:`~eventsvc.vault.keeper`: the lease keeper loop (renew, log in again,
  re-issue, with backoff) and the process that runs it beside gunicorn.

The names below are re-exported for existing imports; new code imports from
the module that owns the name.
"""

from __future__ import annotations

from eventsvc.files import write_private_file
from eventsvc.settings import Settings, VaultSettings
from eventsvc.vault.errors import (
    APP_POLICY,
    VaultError,
    VaultPermissionDenied,
    VaultSealed,
    VaultUnavailable,
    WrappedSecretIdInvalid,
)
from eventsvc.vault.issued import (
    MongoCredential,
    MongoScramCredential,
    MongoX509Credential,
    Refresh,
    ServerTLS,
    TokenState,
)
from eventsvc.vault.keeper import Backoff, LeaseKeeper, LeaseKeeperProcess
from eventsvc.vault.login import (
    LoginRequest,
    approle_login_request,
    https_address,
    kubernetes_login_request,
    unwrap_secret_id,
)
from eventsvc.vault.session import VaultSession


class VaultConfig(VaultSettings):
    """Transitional: the dev stack's old name for ``settings.vault``; use VaultSettings.

    Kept only so ``eventsvc.devstack``, which another change is moving out of
    the package, works unchanged. Remove it once the dev stack reads
    ``settings.vault`` (and writes files with :mod:`eventsvc.files`).
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultConfig:
        """``settings.vault``; ValueError without an https:// address, as before."""
        https_address(settings.vault)
        return cls.model_validate(settings.vault.model_dump())


__all__ = [
    "APP_POLICY",
    "Backoff",
    "LeaseKeeper",
    "LeaseKeeperProcess",
    "LoginRequest",
    "MongoCredential",
    "MongoScramCredential",
    "MongoX509Credential",
    "Refresh",
    "ServerTLS",
    "TokenState",
    "VaultConfig",
    "VaultError",
    "VaultPermissionDenied",
    "VaultSealed",
    "VaultSession",
    "VaultUnavailable",
    "WrappedSecretIdInvalid",
    "approle_login_request",
    "kubernetes_login_request",
    "unwrap_secret_id",
    "write_private_file",
]

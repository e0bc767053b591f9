"""How an operator's or auditor's CLI run reaches Vault: their own token, TLS verified.

The settings are the Vault CLI's own variables: ``VAULT_ADDR`` (https only),
``VAULT_TOKEN`` and optionally ``VAULT_CACERT`` (else the system trust store).
The token is a person's, held in their environment, never a flag; it is
used as is and never revoked here. What it may read is its policy's business:
``eventsvc-bootstrap-admin`` for ``token bootstrap``, ``eventsvc-auditor``
for ``audit verify`` (see vault/policies/).

Imported only by the commands that need it, so the everyday client commands
never load hvac.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from eventsvc.cli.config import ConfigError
from eventsvc.settings import VaultSettings
from eventsvc.vault.login import https_address
from eventsvc.vault.session import VaultSession

ADDR_ENV = "VAULT_ADDR"
TOKEN_ENV = "VAULT_TOKEN"  # the variable's name
CA_ENV = "VAULT_CACERT"


def operator_vault_settings(environ: Mapping[str, str]) -> VaultSettings:
    """The Vault address and CA from the environment; ConfigError says what is missing."""
    addr = environ.get(ADDR_ENV, "").strip()
    if not addr:
        raise ConfigError(f"{ADDR_ENV} is not set: the Vault address (https://...)")
    if not environ.get(TOKEN_ENV, "").strip():
        raise ConfigError(f"{TOKEN_ENV} is not set: log in to Vault first (vault login)")
    ca_text = environ.get(CA_ENV, "").strip()
    ca_file = Path(ca_text).expanduser() if ca_text else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"{CA_ENV} {ca_file} is not a readable file")
    settings = VaultSettings(addr=addr.rstrip("/"), ca_file=ca_file, auth_method="token")
    try:
        https_address(settings)
    except ValueError as exc:
        raise ConfigError(f"{ADDR_ENV}: {exc}") from None
    return settings


@contextmanager
def operator_session(environ: Mapping[str, str]) -> Iterator[VaultSession]:
    """A session on the caller's own Vault token (from ``VAULT_TOKEN``).

    Token auth is refused for the service outside dev; here it is the normal
    case: a person's token, used for one command, left valid afterwards.
    """
    session = VaultSession.open(operator_vault_settings(environ), allow_token_auth=True)
    try:
        yield session
    finally:
        session.shutdown()  # removes the runtime directory; a given token is not revoked

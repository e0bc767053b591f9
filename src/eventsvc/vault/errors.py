"""What can go wrong talking to Vault, said in one line that never holds a secret.

Every failure of the vault package is a :class:`VaultError`: its message
names the Vault address, the path and the policies involved, so an operator
knows what to fix. :func:`as_vault_errors` turns hvac's and requests'
exceptions into these types at every request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import hvac.exceptions
import requests

from eventsvc.settings import VaultSettings

APP_POLICY = "eventsvc-app"
"""The policy the service's token is expected to carry (vault/policies/eventsvc-app.hcl)."""


class VaultError(Exception):
    """A Vault operation failed. The message is one line and never holds a secret."""


class VaultUnavailable(VaultError):
    """Vault cannot be reached, or answered 5xx: retrying later may help."""


class VaultSealed(VaultUnavailable):
    """Vault is reachable but sealed: an operator must unseal it."""


class VaultPermissionDenied(VaultError):
    """The token's policies do not allow the request, or the token is no longer valid."""


class WrappedSecretIdInvalid(VaultError):
    """The wrapping token is missing, expired, already used, or not a secret_id for our role."""


def _vault_reason(exc: hvac.exceptions.VaultError) -> str:
    errors = getattr(exc, "errors", None) or [str(exc) or type(exc).__name__]
    return "; ".join(str(error).strip().replace("\n", " ") for error in errors)


@contextlib.contextmanager
def as_vault_errors(
    vault: VaultSettings, operation: str, path: str, policies: tuple[str, ...]
) -> Iterator[None]:
    """Turn hvac/requests exceptions into one-line :class:`VaultError` subclasses.

    ``from None``: the original exception is not chained, so no library
    message (which could quote a request) reaches a log through a traceback.
    """
    where = f"Vault at {vault.addr}: {operation} {path}"
    policy_list = ", ".join(policies) or APP_POLICY
    try:
        yield
    except requests.exceptions.SSLError:
        raise VaultUnavailable(
            f"{where}: TLS verification failed; check the CA file ({vault.ca_file})"
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        raise VaultUnavailable(
            f"{where}: unreachable; check the address and that the server runs"
        ) from None
    except OSError:
        # requests raises a bare OSError when the CA file is missing or unreadable.
        raise VaultUnavailable(f"{where}: cannot read the CA file ({vault.ca_file})") from None
    except hvac.exceptions.VaultDown as exc:
        if "sealed" in _vault_reason(exc).lower():
            raise VaultSealed(f"{where}: Vault is sealed; an operator must unseal it") from None
        raise VaultUnavailable(f"{where}: Vault is down ({_vault_reason(exc)})") from None
    except hvac.exceptions.Forbidden:
        raise VaultPermissionDenied(
            f"{where}: permission denied for policies [{policy_list}]; "
            "the path is outside the policy, or the token expired or was revoked"
        ) from None
    except (
        hvac.exceptions.InternalServerError,
        hvac.exceptions.BadGateway,
        hvac.exceptions.RateLimitExceeded,
    ) as exc:
        raise VaultUnavailable(f"{where}: server error ({_vault_reason(exc)})") from None
    except hvac.exceptions.VaultError as exc:
        raise VaultError(f"{where}: rejected ({_vault_reason(exc)})") from None

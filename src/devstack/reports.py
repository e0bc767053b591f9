"""The local stack as the signing identity of security report bundles.

CI signs a bundle's manifest keylessly with the workflow's identity; on a
developer's machine the local OpenBao is that identity: ``make sign-report``
signs with the transit key ``secgate-report`` through a token that may only
sign (``.run/report-signer-vault-token``, policy eventsvc-report-signer), and
``make verify-report`` fetches the public key with the *auditor's* token, as an
auditor would, before checking the bundle.
"""

from __future__ import annotations

from pathlib import Path

import hvac
import hvac.exceptions
import requests

from devstack.errors import StackError
from devstack.paths import StackPaths
from eventsvc.files import write_private_file
from secgate.signing import SigningError, sign_with_vault_transit

TRANSIT_MOUNT = "transit"
REPORT_KEY = "secgate-report"


def sign_report(paths: StackPaths, report_dir: Path, vault_addr: str, vault_ca: Path) -> Path:
    """Sign ``report_dir``'s manifest; the path of the signature file written into it."""
    token = _token(paths.report_signer_token, "report signer")
    try:
        return sign_with_vault_transit(
            report_dir,
            addr=vault_addr,
            token=token,
            ca_file=str(vault_ca),
            key=REPORT_KEY,
            mount=TRANSIT_MOUNT,
        )
    except (SigningError, OSError) as exc:
        raise StackError("sign-report", str(exc), paths.stack_log) from None


def write_report_public_key(
    paths: StackPaths, vault_addr: str, vault_ca: Path, target: Path
) -> Path:
    """The latest public key of ``secgate-report``, read with the auditor token, into ``target``."""
    client = hvac.Client(
        url=vault_addr, token=_token(paths.auditor_vault_token, "auditor"), verify=str(vault_ca)
    )
    try:
        key = client.secrets.transit.read_key(name=REPORT_KEY, mount_point=TRANSIT_MOUNT)["data"]
    except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
        raise StackError(
            "verify-report",
            f"cannot read transit/keys/{REPORT_KEY}: {type(exc).__name__}",
            paths.stack_log,
        ) from None
    public_key = str(key["keys"][str(key["latest_version"])]["public_key"])
    write_private_file(target, public_key + "\n")
    return target


def _token(path: Path, who: str) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        raise StackError(
            "sign-report", f"no {who} token at {path}: start the stack first (make up)", path
        ) from None

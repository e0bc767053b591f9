"""The login checks of eventsvc.vault.login that hold before any request.

No server: a setting that is missing, or a secret file that cannot be read,
is refused here with a message naming what to fix and never the secret.
Address https://127.0.0.1:9 is closed: a check that let a call through would
end in "unreachable", not in the message asserted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import SecretStr

from eventsvc.settings import VaultSettings
from eventsvc.vault.errors import VaultError
from eventsvc.vault.login import (
    approle_login_request,
    read_secret_file,
    unwrap_secret_id,
)

CLOSED = "https://127.0.0.1:9"
BOTH_NEEDED = "needs EVENTSVC_VAULT_ROLE_ID and EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE"


def test_an_unreadable_secret_file_names_the_system_reason(tmp_path: Path) -> None:
    with pytest.raises(VaultError) as err:
        read_secret_file(tmp_path / "absent", "Vault token")
    assert str(err.value) == (
        f"cannot read the Vault token file {tmp_path / 'absent'}: No such file or directory"
    )


def test_a_secret_file_that_is_not_ascii_says_so_without_its_content(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_bytes("s.jeton-secr\u00e9t\n".encode())
    with pytest.raises(VaultError) as err:
        read_secret_file(secret_file, "Vault token")
    assert str(err.value) == f"cannot read the Vault token file {secret_file}: not ASCII"


def test_the_approle_login_keeps_its_secret_id_out_of_repr_and_cannot_be_changed() -> None:
    vault = VaultSettings(addr=CLOSED, role_id="role-1234")
    request = approle_login_request(vault, SecretStr("secret-id-5678"))
    assert request.path == "auth/approle/login"
    assert request.payload == {"role_id": "role-1234", "secret_id": "secret-id-5678"}
    assert "secret-id-5678" not in repr(request)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.path = "auth/token/create"  # type: ignore[misc]


def test_the_approle_login_needs_a_role_id() -> None:
    with pytest.raises(VaultError, match=r"needs EVENTSVC_VAULT_ROLE_ID$"):
        approle_login_request(VaultSettings(addr=CLOSED), SecretStr("secret-id-5678"))


@pytest.mark.parametrize("missing", ["role_id", "wrapped_secret_id_file", "both"])
def test_unwrapping_needs_both_the_role_id_and_the_wrapped_file(
    tmp_path: Path, missing: str
) -> None:
    """Refused before the wrapping token is read or sent: it stays unspent."""
    wrapped = tmp_path / "wrapped-secret-id"
    wrapped.write_text("s.wrapping-token\n")
    values: dict[str, object] = {"role_id": "role-1234", "wrapped_secret_id_file": wrapped}
    for name in values.copy():
        if missing in (name, "both"):
            del values[name]
    with pytest.raises(VaultError) as err:
        unwrap_secret_id(VaultSettings(addr=CLOSED, **values))  # type: ignore[arg-type]
    assert BOTH_NEEDED in str(err.value)

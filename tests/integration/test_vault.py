"""eventsvc.vault and the bootstrap, against a real OpenBao (dev-tls) on loopback.

One bao, bootstrapped from vault/bootstrap.yaml, is shared by the module.
Every test logs in with its own freshly delivered wrapped secret_id.
"""

from __future__ import annotations

import logging
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from vault_support import (
    BOOTSTRAP_FILE,
    InterposedVault,
    Stack,
    assert_no_secret_in,
    start_stack,
)

from devstack.openbao import (
    bootstrap,
    deliver_wrapped_secret_id,
    server_binary,
    start_openbao,
)
from eventsvc.settings import VaultSettings
from eventsvc.vault.errors import (
    VaultError,
    VaultPermissionDenied,
    VaultSealed,
    VaultUnavailable,
    WrappedSecretIdInvalid,
)
from eventsvc.vault.session import VaultSession


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("vault"))
    try:
        yield running
    finally:
        running.bao.stop()


@pytest.fixture
def session(stack: Stack, tmp_path: Path) -> Iterator[VaultSession]:
    opened = VaultSession.open(stack.config(tmp_path))
    try:
        yield opened
    finally:
        opened.shutdown()


def kv_read(root: hvac.Client, path: str) -> dict[str, Any]:
    response: dict[str, Any] = root.secrets.kv.v2.read_secret_version(
        path, mount_point="kv", raise_on_deleted_version=True
    )
    return response


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _load_cert(pem_file: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem_file.read_bytes())


# --- bootstrap -------------------------------------------------------------------------


def test_bootstrap_builds_the_layout_from_nothing(stack: Stack) -> None:
    root = stack.root
    mounts = root.read("sys/mounts")["data"]
    assert mounts["pki/"]["type"] == "pki"
    assert mounts["pki_int/"]["type"] == "pki"
    assert mounts["kv/"]["type"] == "kv"
    assert mounts["kv/"]["options"]["version"] == "2"
    assert root.read("sys/auth")["data"]["approle/"]["type"] == "approle"
    assert root.sys.list_enabled_audit_devices()["data"]["file/"]["type"] == "file"
    for name in ("eventsvc-app", "eventsvc-operator", "eventsvc-break-glass", "eventsvc-ci"):
        assert root.read(f"sys/policies/acl/{name}")["data"]["policy"]
    client_role = root.read("pki_int/roles/eventsvc-mongo-client")["data"]
    assert (client_role["client_flag"], client_role["server_flag"]) == (True, False)
    assert client_role["ou"] == ["eventsvc-clients"]
    server_role = root.read("pki_int/roles/eventsvc-api-server")["data"]
    assert (server_role["client_flag"], server_role["server_flag"]) == (False, True)
    assert root.read("pki_int/roles/eventsvc-mongod-server")["data"]["ou"] == ["eventsvc-mongod"]
    approle = root.read("auth/approle/role/eventsvc")["data"]
    assert approle["secret_id_num_uses"] == 1
    assert approle["token_policies"] == ["eventsvc-app"]
    assert approle["token_no_default_policy"] is True
    audit_key = kv_read(root, "eventsvc/audit-hmac")["data"]["data"]["audit_hmac_key"]
    pepper = kv_read(root, "eventsvc/token-pepper")["data"]["data"]["token_pepper"]
    assert len(audit_key) >= 40
    assert audit_key != pepper
    signing_key = root.read("transit/keys/eventsvc-audit-checkpoint")["data"]
    assert (signing_key["type"], signing_key["exportable"]) == ("ed25519", False)
    assert signing_key["allow_plaintext_backup"] is False


def test_bootstrap_twice_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    def kv_seed() -> dict[str, str]:
        return dict(kv_read(stack.root, "eventsvc/mongodb")["data"]["data"])

    before = kv_seed()
    again = bootstrap(stack.root, BOOTSTRAP_FILE, tmp_path)
    assert again.role_id == stack.boot.role_id
    assert again.ca_chain_file.read_text() == stack.boot.ca_chain_file.read_text()
    assert kv_seed() == before


def test_bootstrap_never_configures_an_unaudited_server(stack: Stack, tmp_path: Path) -> None:
    """OpenBao takes audit devices from its configuration only, so bootstrap refuses;
    HashiCorp Vault (EVENTSVC_BAO_BIN) lets bootstrap enable the device itself."""
    definition = tmp_path / "bootstrap.yaml"
    definition.write_text(BOOTSTRAP_FILE.read_text().replace("path: file", "path: nowhere", 1))
    if server_binary().flavour == "openbao":
        with pytest.raises(RuntimeError, match="no file audit device at nowhere/"):
            bootstrap(stack.root, definition, tmp_path)
    else:
        bootstrap(stack.root, definition, tmp_path)
        assert "nowhere/" in stack.root.sys.list_enabled_audit_devices()["data"]


def _token_client(root: hvac.Client, addr: str, ca_file: Path, policy: str) -> hvac.Client:
    token = root.auth.token.create(policies=[policy], no_default_policy=True, ttl="5m")["auth"][
        "client_token"
    ]
    return hvac.Client(url=addr, token=token, verify=str(ca_file))


def _write_policy_file(root: hvac.Client, name: str) -> None:
    policy = (BOOTSTRAP_FILE.parent / "policies" / f"{name}.hcl").read_text()
    root.write_data(f"sys/policies/acl/{name}", data={"policy": policy})


def test_bootstrap_needs_break_glass_once_then_the_operator_suffices(tmp_path: Path) -> None:
    """The first run writes policies and the AppRole (break-glass); later runs only
    compare them, so the standing operator re-applies the layout and stops, naming
    the path, where vault/ and the server differ."""
    with start_openbao(tmp_path / "bao") as bao:
        root = bao.root_client()
        for name in ("eventsvc-operator", "eventsvc-break-glass"):
            _write_policy_file(root, name)
        operator = _token_client(root, bao.addr, bao.ca_file, "eventsvc-operator")
        with pytest.raises(RuntimeError, match="sys/policies/acl/eventsvc-app differs"):
            bootstrap(operator, BOOTSTRAP_FILE, tmp_path / "zero")

        token = root.auth.token.create(
            policies=["eventsvc-operator", "eventsvc-break-glass"], no_default_policy=True
        )["auth"]["client_token"]
        first_run = hvac.Client(url=bao.addr, token=token, verify=str(bao.ca_file))
        first = bootstrap(first_run, BOOTSTRAP_FILE, tmp_path / "one")
        second = bootstrap(operator, BOOTSTRAP_FILE, tmp_path / "two")
        assert first.role_id == second.role_id
        with pytest.raises(hvac.exceptions.Forbidden):
            operator.read("kv/data/eventsvc/mongodb")  # seeds, never reads

        # A weakened AppRole on the server is put back only with break-glass.
        root.write_data("auth/approle/role/eventsvc", data={"secret_id_num_uses": 0})
        with pytest.raises(RuntimeError, match="auth/approle/role/eventsvc differs"):
            bootstrap(operator, BOOTSTRAP_FILE, tmp_path / "three")
        bootstrap(first_run, BOOTSTRAP_FILE, tmp_path / "four")
        assert root.read("auth/approle/role/eventsvc")["data"]["secret_id_num_uses"] == 1


def test_ci_policy_only_hands_out_wrapped_secret_ids(stack: Stack, tmp_path: Path) -> None:
    ci = _token_client(stack.root, stack.bao.addr, stack.bao.ca_file, "eventsvc-ci")
    with pytest.raises(hvac.exceptions.Forbidden):
        ci.write_data("auth/approle/role/eventsvc/secret-id", data={})  # not wrapped
    wrapped = deliver_wrapped_secret_id(ci, tmp_path / "wrapped", wrap_ttl="60s")
    config = stack.config(tmp_path / "app", wrapped_secret_id_file=wrapped)
    VaultSession.open(config).shutdown()
    with pytest.raises(hvac.exceptions.Forbidden):
        ci.read("kv/data/eventsvc/token-pepper")


# --- login -----------------------------------------------------------------------------


def test_wrapped_secret_id_logs_in_once(stack: Stack, tmp_path: Path) -> None:
    config = stack.config(tmp_path)
    session = VaultSession.open(config, runtime_parent=tmp_path / "run")
    try:
        assert session.token is not None
        assert session.token.policies == ("eventsvc-app",)
        assert session.read("auth/token/lookup-self")["data"]["policies"] == ["eventsvc-app"]
        assert _mode(session.runtime_dir) == 0o700
    finally:
        session.shutdown()
    with pytest.raises(WrappedSecretIdInvalid, match="expired, already used or unknown") as err:
        VaultSession.open(config, runtime_parent=tmp_path / "run")
    assert str(config.wrapped_secret_id_file) in str(err.value)
    assert list((tmp_path / "run").iterdir()) == [], "a failed login leaves no runtime dir"


def test_wrapping_token_for_another_path_is_refused_before_unwrap(
    stack: Stack, tmp_path: Path
) -> None:
    config = stack.config(tmp_path)
    wrapped = stack.root.write_data(
        "sys/wrapping/wrap", data={"secret_id": "not-a-secret-id"}, wrap_ttl="60s"
    )
    token = wrapped["wrap_info"]["token"]
    assert config.wrapped_secret_id_file is not None
    config.wrapped_secret_id_file.write_text(token)
    with pytest.raises(WrappedSecretIdInvalid, match="wraps sys/wrapping/wrap, not auth/approle"):
        VaultSession.open(config)
    # Refused *before* unwrap: the wrapping token is still good.
    assert stack.root.sys.unwrap(token)["data"] == {"secret_id": "not-a-secret-id"}


@pytest.mark.parametrize("other_role", ["intruder", "eventsvc-blue"])
def test_wrapped_secret_id_of_another_role_is_refused(
    stack: Stack, tmp_path: Path, other_role: str
) -> None:
    """Any other creation path is refused, whether it sorts after ours or before it
    ("eventsvc-blue/" < "eventsvc/"), and the token is left unspent."""
    stack.root.write_data(
        f"auth/approle/role/{other_role}",
        data={"token_policies": ["default"], "secret_id_num_uses": 1},
    )
    config = stack.config(tmp_path, approle_role=other_role)
    expecting_eventsvc = config.model_copy(update={"approle_role": "eventsvc"})
    with pytest.raises(WrappedSecretIdInvalid, match=f"role/{other_role}/secret-id, not"):
        VaultSession.open(expecting_eventsvc)
    assert config.wrapped_secret_id_file is not None
    token = config.wrapped_secret_id_file.read_text().strip()
    assert stack.root.sys.unwrap(token)["data"]["secret_id"]


def test_a_secret_id_unwrapped_by_someone_else_after_the_lookup_points_to_the_audit_log(
    stack: Stack, tmp_path: Path
) -> None:
    """The race the lookup cannot close: another holder of the wrapping token unwraps
    it between our lookup and our unwrap. The service must not log in, and the
    error must send the operator to the audit log."""
    config = stack.config(tmp_path)
    stolen: list[str] = []

    def someone_else_unwraps(token: str) -> None:
        stolen.append(stack.root.sys.unwrap(token)["data"]["secret_id"])

    with InterposedVault(stack.bao, someone_else_unwraps) as vault:
        interposed = config.model_copy(update={"addr": vault.addr})
        with pytest.raises(WrappedSecretIdInvalid, match=r"already used or unknown.*audit log"):
            VaultSession.open(interposed, runtime_parent=tmp_path / "run")
    assert stolen, "the token was not unwrapped in between: the test would prove nothing"
    assert list((tmp_path / "run").iterdir()) == []


def test_vault_lost_between_lookup_and_unwrap_is_unavailable_and_the_token_unspent(
    stack: Stack, tmp_path: Path
) -> None:
    """Not "already used": that would send an operator to deliver a new secret_id
    and search the audit log, when retrying with the same token will do."""
    config = stack.config(tmp_path)
    assert config.wrapped_secret_id_file is not None
    token = config.wrapped_secret_id_file.read_text().strip()

    def vault_goes_away(_token: str) -> None:
        vault.dropping = True

    with InterposedVault(stack.bao, vault_goes_away) as vault:
        interposed = config.model_copy(update={"addr": vault.addr})
        with pytest.raises(VaultUnavailable, match="unwrap sys/wrapping/unwrap: unreachable"):
            VaultSession.open(interposed)
    assert stack.root.sys.unwrap(token)["data"]["secret_id"]


def test_without_a_ca_file_vault_is_verified_against_the_system_trust_store(
    stack: Stack, tmp_path: Path
) -> None:
    """No EVENTSVC_VAULT_CA_FILE does not mean no verification: the dev server's
    own CA is not in the system store, so its certificate is refused."""
    config = stack.config(tmp_path, ca_file=None)
    with pytest.raises(VaultUnavailable, match="TLS verification failed"):
        VaultSession.open(config)


def test_missing_wrapped_secret_id_file_is_a_clear_error(stack: Stack, tmp_path: Path) -> None:
    config = stack.config(tmp_path, wrapped_secret_id_file=tmp_path / "absent")
    with pytest.raises(WrappedSecretIdInvalid, match="absent"):
        VaultSession.open(config)


def test_token_auth_is_refused_unless_allowed(stack: Stack, tmp_path: Path) -> None:
    child = stack.root.auth.token.create(
        policies=["eventsvc-app"], ttl="60s", no_default_policy=True
    )
    token_file = tmp_path / "token"
    token_file.write_text(child["auth"]["client_token"])
    config = stack.config(tmp_path, auth_method="token", token_file=token_file)
    with pytest.raises(VaultError, match="dev profile only"):
        VaultSession.open(config)
    session = VaultSession.open(config, allow_token_auth=True)
    assert session.read_app_secret("token-pepper")
    session.shutdown()
    # A given token belongs to the developer: shutdown does not revoke it.
    assert stack.root.auth.token.lookup(child["auth"]["client_token"])["data"]["ttl"] > 0


# --- policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "path"),
    [
        ("read", "kv/data/other"),
        ("read", "sys/policy"),
        ("read", "pki/cert/ca_chain/../../sys/mounts"),
        ("write", "pki_int/issue/eventsvc-mongod-server"),
        ("write", "kv/data/eventsvc/audit-hmac"),
        ("write", "auth/approle/role/eventsvc/secret-id"),
        ("write", "pki_int/revoke"),
    ],
)
def test_the_app_token_cannot_leave_its_policy(
    session: VaultSession, operation: str, path: str
) -> None:
    def attempt() -> None:
        if operation == "read":
            session.read(path)
        else:
            session.write(path, {"common_name": "localhost", "serial_number": "00"})

    with pytest.raises(VaultPermissionDenied) as err:
        attempt()
    message = str(err.value)
    assert str(session.settings.addr) in message
    assert "eventsvc-app" in message
    assert "\n" not in message


# --- credentials -----------------------------------------------------------------------


def test_mongo_client_certificate_is_a_client_of_its_own_ou(session: VaultSession) -> None:
    credential = session.issue_mongo_credential()
    assert credential.__class__.__name__ == "MongoX509Credential"
    assert _mode(credential.cert_key_file) == 0o600
    cert = _load_cert(credential.cert_key_file)
    ous = [
        attr.value for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ]
    assert ous == ["eventsvc-clients"]
    assert credential.subject == cert.subject.rfc4514_string()
    assert "OU=eventsvc-clients" in credential.subject
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # The CA file holds the chain that issued it.
    chain = x509.load_pem_x509_certificates(credential.ca_file.read_bytes())
    cert.verify_directly_issued_by(chain[0])
    assert "PRIVATE KEY" in credential.cert_key_file.read_text()


def test_server_tls_is_a_server_certificate_for_the_configured_names(
    session: VaultSession,
) -> None:
    tls = session.issue_server_tls()
    assert _mode(tls.key_file) == 0o600
    cert = _load_cert(tls.cert_file)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)  # key matches, chain parses
    context.load_verify_locations(tls.ca_file)


def test_scram_credential_comes_from_kv(stack: Stack, tmp_path: Path) -> None:
    session = VaultSession.open(stack.config(tmp_path), mongodb_auth_mode="scram")
    try:
        credential = session.issue_mongo_credential()
    finally:
        session.shutdown()
    seeded = kv_read(stack.root, "eventsvc/mongodb")
    assert credential.username == "eventsvc"  # type: ignore[union-attr]
    password = credential.password.get_secret_value()  # type: ignore[union-attr]
    assert password == seeded["data"]["data"]["password"]
    assert password not in repr(credential)


# --- failures --------------------------------------------------------------------------


def test_unreachable_vault_is_a_clear_error(stack: Stack, tmp_path: Path) -> None:
    config = stack.config(tmp_path, addr="https://127.0.0.1:9", request_timeout_s=2.0)
    with pytest.raises(VaultUnavailable, match=r"https://127\.0\.0\.1:9: lookup .* unreachable"):
        VaultSession.open(config)


def test_untrusted_vault_certificate_is_refused(stack: Stack, tmp_path: Path) -> None:
    config = stack.config(tmp_path, ca_file=stack.boot.ca_chain_file)
    with pytest.raises(VaultUnavailable, match="TLS verification failed"):
        VaultSession.open(config)


def test_plain_http_vault_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="https://"):
        VaultSession.open(VaultSettings(addr="http://127.0.0.1:8200"), runtime_parent=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_sealed_vault_is_a_clear_error(tmp_path: Path) -> None:
    with start_openbao(tmp_path / "sealed") as bao:
        bao.seal()
        wrapped = tmp_path / "wrapped"
        wrapped.write_text("does-not-matter")
        config = VaultSettings(
            addr=bao.addr, ca_file=bao.ca_file, role_id="any", wrapped_secret_id_file=wrapped
        )
        with pytest.raises(VaultSealed, match="sealed; an operator must unseal it"):
            VaultSession.open(config, runtime_parent=tmp_path / "run")


# --- shutdown and secrecy --------------------------------------------------------------


def test_shutdown_revokes_token_and_certificates_and_removes_files(
    stack: Stack, tmp_path: Path
) -> None:
    session = VaultSession.open(stack.config(tmp_path))
    assert session.token is not None
    accessor = session.token.accessor
    mongo = session.issue_mongo_credential()
    tls = session.issue_server_tls()
    runtime_dir = session.runtime_dir
    session.shutdown()
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
        stack.root.auth.token.lookup_accessor(accessor)
    assert not runtime_dir.exists()
    for serial in (mongo.serial_number, tls.serial_number):  # type: ignore[union-attr]
        assert stack.root.read(f"pki_int/cert/{serial}")["data"]["revocation_time"] > 0
    crl = x509.load_pem_x509_crl(stack.root.adapter.get("/v1/pki_int/crl/pem").content)
    revoked = {format(entry.serial_number, "x") for entry in crl}
    assert mongo.serial_number.replace(":", "").lstrip("0") in revoked  # type: ignore[union-attr]
    with pytest.raises(VaultPermissionDenied):
        session.read("auth/token/lookup-self")


def test_no_secret_reaches_logs_errors_or_reprs(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = stack.config(tmp_path)
    assert config.wrapped_secret_id_file is not None
    wrapping_token = config.wrapped_secret_id_file.read_text().strip()
    errors: list[str] = []
    session = VaultSession.open(config)
    app_token = session._client.token
    mongo = session.issue_mongo_credential()
    tls = session.issue_server_tls()
    session.renew_or_log_in()
    for path in ("kv/data/other", "sys/policy"):
        try:
            session.read(path)
        except VaultError as exc:
            errors.append(str(exc))
    try:
        VaultSession.open(config)  # the used wrapping token again
    except VaultError as exc:
        errors.append(str(exc))
    reprs = [repr(session), repr(config), repr(mongo), repr(tls), repr(session.token)]
    private_keys = [
        mongo.cert_key_file.read_text().split("-----END CERTIFICATE-----")[1].strip(),  # type: ignore[union-attr]
        tls.key_file.read_text().strip(),
    ]
    session.shutdown()
    seeded = kv_read(stack.root, "eventsvc/mongodb")
    secrets = [
        wrapping_token,
        app_token,
        stack.bao.root_token,
        seeded["data"]["data"]["password"],
        *private_keys,
    ]
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert_no_secret_in("\n".join([caplog.text, *errors, *reprs]), secrets)


def test_app_token_is_periodic_so_a_healthy_service_never_logs_in_again(
    session: VaultSession,
) -> None:
    """A max TTL would force a daily re-login with a single-use secret_id."""
    before = session.token
    session.renew_or_log_in()
    looked_up = session._client.auth.token.lookup_self()["data"]
    assert looked_up["period"] == 3600
    assert looked_up["explicit_max_ttl"] == 0
    assert session.token.accessor == before.accessor  # renewed, not a new login

"""Who may reach what on Vault: every eventsvc policy against every sensitive path.

One real OpenBao, bootstrapped from vault/bootstrap.yaml. Each row is one
request made with a token holding that policy, and what must happen:
``REACH`` means the policy lets the request through (the server may still
refuse it for other reasons, say an invalid body: that is a 400, not a 403);
``DENY`` means the server answers 403. Person and CI tokens are created the
way Vault normally creates them, with the ``default`` policy as well, so a
grant that ``default`` would add is caught too; the service's token comes
from a real AppRole login, as in production.

Below the matrix, the escalations found in issue #15 are replayed as attacks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import hvac
import hvac.exceptions
import pytest
from vault_support import Stack, start_stack

from devstack.gateway import gateway_vault_client
from devstack.openbao import role_id

Operation = Literal["read", "write", "list", "delete"]
REACH, DENY = True, False

APP = "eventsvc-app"
OPERATOR = "eventsvc-operator"
BREAK_GLASS = "eventsvc-break-glass"
CI = "eventsvc-ci"
MEMBER = "eventsvc-mongod-member"
AUDITOR = "eventsvc-auditor"
BOOTSTRAP_ADMIN = "eventsvc-bootstrap-admin"
REPORT_SIGNER = "eventsvc-report-signer"
GATEWAY = "eventsvc-gateway"

PEPPER = "kv/data/eventsvc/token-pepper"
AUDIT_KEY = "kv/data/eventsvc/audit-hmac"
MONGODB = "kv/data/eventsvc/mongodb"
BOOTSTRAP_RECORD = "kv/data/eventsvc/bootstrap-token"
SIGNING_KEY = "transit/keys/eventsvc-audit-checkpoint"
SIGN = "transit/sign/eventsvc-audit-checkpoint"
EXPORT = "transit/export/signing-key/eventsvc-audit-checkpoint"
BACKUP = "transit/backup/eventsvc-audit-checkpoint"
REPORT_KEY = "transit/keys/secgate-report"
REPORT_SIGN = "transit/sign/secgate-report"
MEMBER_CERT = "pki_int/issue/eventsvc-mongod-server"
CLIENT_CERT = "pki_int/issue/eventsvc-mongo-client"
GATEWAY_CERT = "pki_int/issue/eventsvc-gateway-server"
API_CERT = "pki_int/issue/eventsvc-api-server"
APPROLE = "auth/approle/role/eventsvc"
SECRET_ID = "auth/approle/role/eventsvc/secret-id"
ROLE_ID = "auth/approle/role/eventsvc/role-id"

# What the attacker of issue #15 wrote into the operator's own policy.
ESCALATED_POLICY = (
    'path "kv/data/eventsvc/*" { capabilities = ["read"] }\n'
    'path "sys/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }\n'
)
SIGN_BODY = {"input": base64.b64encode(b"checkpoint").decode()}
CERT_BODY = {"common_name": "localhost", "ttl": "5m"}


@dataclass(frozen=True)
class Case:
    """One request by one policy's token, and whether the policy must let it through."""

    policy: str
    operation: Operation
    path: str
    reach: bool
    body: dict[str, Any] | None = None
    wrap_ttl: str | None = None

    @property
    def id(self) -> str:
        verdict = "reach" if self.reach else "DENY"
        return f"{self.policy}-{self.operation}-{self.path}-{verdict}"


def _secrets(policy: str, readable: set[str]) -> list[Case]:
    """Read of every eventsvc KV secret: reachable exactly for those in ``readable``."""
    return [
        Case(policy, "read", path, path in readable)
        for path in (PEPPER, AUDIT_KEY, MONGODB, BOOTSTRAP_RECORD)
    ]


def _policy_writes(policy: str, allowed: bool) -> list[Case]:
    """Writing any eventsvc policy (its own included) or a new one, and the AppRole role."""
    return [
        Case(policy, "write", f"sys/policies/acl/{name}", allowed, {"policy": ESCALATED_POLICY})
        for name in (policy, APP, OPERATOR, BREAK_GLASS)
    ] + [
        Case(policy, "write", "sys/policies/acl/not-eventsvc", DENY, {"policy": ""}),
        Case(policy, "write", APPROLE, allowed, {"secret_id_num_uses": 0}),
    ]


def _signing_key(policy: str, *, sign: bool, read_public: bool) -> list[Case]:
    """The checkpoint key: sign, read its public half; never export, back up or reconfigure."""
    return [
        Case(policy, "write", SIGN, sign, SIGN_BODY),
        Case(policy, "read", SIGNING_KEY, read_public),
        Case(policy, "read", EXPORT, DENY),
        Case(policy, "read", BACKUP, DENY),
        Case(policy, "write", f"{SIGNING_KEY}/config", DENY, {"exportable": True}),
        Case(policy, "delete", SIGNING_KEY, DENY),
    ]


def _report_key(policy: str, *, sign: bool, read_public: bool) -> list[Case]:
    """The report-signing key: the signer signs, the auditor reads the public half; no export."""
    return [
        Case(policy, "write", REPORT_SIGN, sign, SIGN_BODY),
        Case(policy, "read", REPORT_KEY, read_public),
        Case(policy, "read", "transit/export/signing-key/secgate-report", DENY),
        Case(policy, "write", f"{REPORT_KEY}/config", DENY, {"exportable": True}),
    ]


def _kv_tampering(policy: str) -> list[Case]:
    """Nobody but root rewrites, lists, deletes or destroys the eventsvc secrets."""
    return [
        Case(policy, "write", PEPPER, DENY, {"data": {"token_pepper": "x" * 43}}),
        Case(policy, "write", AUDIT_KEY, DENY, {"data": {"audit_hmac_key": "x" * 43}}),
        Case(policy, "list", "kv/metadata/eventsvc", DENY),
        Case(policy, "delete", "kv/metadata/eventsvc/audit-hmac", DENY),
        Case(policy, "write", "kv/destroy/eventsvc/audit-hmac", DENY, {"versions": [1]}),
    ]


def _pki(policy: str, *, client: bool, member: bool, gateway: bool = DENY) -> list[Case]:
    return [
        Case(policy, "write", MEMBER_CERT, member, CERT_BODY),
        Case(policy, "write", CLIENT_CERT, client, {"common_name": "eventsvc", "ttl": "5m"}),
        Case(policy, "write", GATEWAY_CERT, gateway, CERT_BODY),
        Case(policy, "write", "pki_int/revoke", DENY, {"serial_number": "00"}),
    ]


SEEDED_ANCHOR = "eventsvc/seeded-writer/1"  # written by root before the matrix runs


def _anchors(policy: str, *, append: bool, audit: bool) -> list[Case]:
    """Checkpoint anchors: append a new one; never rewrite, delete, destroy or re-configure."""
    fresh = f"audit-anchors/data/eventsvc/{policy}/1"
    return [
        Case(policy, "write", fresh, append, {"data": {"number": 1}}),
        Case(policy, "write", f"audit-anchors/data/{SEEDED_ANCHOR}", DENY, {"data": {}}),
        Case(policy, "delete", f"audit-anchors/data/{SEEDED_ANCHOR}", DENY),
        Case(policy, "write", f"audit-anchors/delete/{SEEDED_ANCHOR}", DENY, {"versions": [1]}),
        Case(policy, "write", f"audit-anchors/destroy/{SEEDED_ANCHOR}", DENY, {"versions": [1]}),
        Case(policy, "delete", f"audit-anchors/metadata/{SEEDED_ANCHOR}", DENY),
        Case(
            policy,
            "write",
            f"audit-anchors/metadata/{SEEDED_ANCHOR}",
            DENY,
            {"max_versions": 1, "delete_version_after": "1s"},
        ),
        Case(policy, "write", "audit-anchors/config", DENY, {"max_versions": 1}),
        Case(policy, "list", "audit-anchors/metadata/eventsvc/", audit),
        Case(policy, "read", f"audit-anchors/data/{SEEDED_ANCHOR}", audit),
    ]


def _approle(policy: str, *, role_id_readable: bool, wrapped_secret_id: bool) -> list[Case]:
    return [
        Case(policy, "read", ROLE_ID, role_id_readable),
        Case(policy, "write", SECRET_ID, wrapped_secret_id, {}, wrap_ttl="60s"),
        Case(policy, "write", SECRET_ID, DENY, {}),  # unwrapped: never
        Case(policy, "list", SECRET_ID, DENY),
    ]


MATRIX: list[Case] = [
    # The service: its four secrets, sign-only, client and HTTPS certificates.
    *_secrets(APP, {PEPPER, AUDIT_KEY, MONGODB, BOOTSTRAP_RECORD}),
    *_kv_tampering(APP),
    *_signing_key(APP, sign=REACH, read_public=DENY),
    *_pki(APP, client=REACH, member=DENY),
    *_approle(APP, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_policy_writes(APP, DENY),
    *_anchors(APP, append=REACH, audit=DENY),
    *_report_key(APP, sign=DENY, read_public=DENY),
    # The standing operator: builds the layout, reads no secret, changes no grant.
    *_secrets(OPERATOR, set()),
    *_kv_tampering(OPERATOR),
    *_signing_key(OPERATOR, sign=DENY, read_public=REACH),
    *_pki(OPERATOR, client=DENY, member=DENY),
    *_approle(OPERATOR, role_id_readable=REACH, wrapped_secret_id=DENY),
    *_policy_writes(OPERATOR, DENY),
    *_anchors(OPERATOR, append=DENY, audit=DENY),
    *_report_key(OPERATOR, sign=DENY, read_public=REACH),
    Case(OPERATOR, "read", f"sys/policies/acl/{APP}", REACH),
    Case(OPERATOR, "read", APPROLE, REACH),
    Case(OPERATOR, "write", "sys/auth/userpass", DENY, {"type": "userpass"}),
    Case(OPERATOR, "write", "auth/token/create", DENY, {"policies": [APP]}),
    # Break-glass: changes grants, and nothing else.
    *_secrets(BREAK_GLASS, set()),
    *_signing_key(BREAK_GLASS, sign=DENY, read_public=DENY),
    *_pki(BREAK_GLASS, client=DENY, member=DENY),
    *_approle(BREAK_GLASS, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_anchors(BREAK_GLASS, append=DENY, audit=DENY),
    *_report_key(BREAK_GLASS, sign=DENY, read_public=DENY),
    Case(BREAK_GLASS, "read", f"sys/policies/acl/{APP}", REACH),
    Case(BREAK_GLASS, "write", "sys/policies/acl/not-eventsvc", DENY, {"policy": ""}),
    # CI: wrapped secret_ids and the CRL; no role_id, no unwrap by value, no member certificate.
    *_secrets(CI, set()),
    *_signing_key(CI, sign=DENY, read_public=DENY),
    *_pki(CI, client=DENY, member=DENY),
    *_approle(CI, role_id_readable=DENY, wrapped_secret_id=REACH),
    *_policy_writes(CI, DENY),
    *_anchors(CI, append=DENY, audit=DENY),
    *_report_key(CI, sign=DENY, read_public=DENY),
    Case(CI, "read", "pki_int/crl/pem", REACH),
    # mongod member provisioning: the member role only.
    *_secrets(MEMBER, set()),
    *_signing_key(MEMBER, sign=DENY, read_public=DENY),
    *_pki(MEMBER, client=DENY, member=REACH),
    *_approle(MEMBER, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_report_key(MEMBER, sign=DENY, read_public=DENY),
    # Auditor: the audit HMAC key and the public checkpoint key; not the pepper.
    *_secrets(AUDITOR, {AUDIT_KEY}),
    *_kv_tampering(AUDITOR),
    *_signing_key(AUDITOR, sign=DENY, read_public=REACH),
    *_pki(AUDITOR, client=DENY, member=DENY),
    *_approle(AUDITOR, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_policy_writes(AUDITOR, DENY),
    *_anchors(AUDITOR, append=DENY, audit=REACH),
    *_report_key(AUDITOR, sign=DENY, read_public=REACH),
    # Bootstrap admin: the pepper and a write-once record; not the audit keys.
    *_secrets(BOOTSTRAP_ADMIN, {PEPPER}),
    *_kv_tampering(BOOTSTRAP_ADMIN),
    *_signing_key(BOOTSTRAP_ADMIN, sign=DENY, read_public=DENY),
    *_pki(BOOTSTRAP_ADMIN, client=DENY, member=DENY),
    *_approle(BOOTSTRAP_ADMIN, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_policy_writes(BOOTSTRAP_ADMIN, DENY),
    *_anchors(BOOTSTRAP_ADMIN, append=DENY, audit=DENY),
    *_report_key(BOOTSTRAP_ADMIN, sign=DENY, read_public=DENY),
    # Report signer: signs report bundles with its own key, and nothing else.
    *_secrets(REPORT_SIGNER, set()),
    *_kv_tampering(REPORT_SIGNER),
    *_signing_key(REPORT_SIGNER, sign=DENY, read_public=DENY),
    *_pki(REPORT_SIGNER, client=DENY, member=DENY),
    *_approle(REPORT_SIGNER, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_policy_writes(REPORT_SIGNER, DENY),
    *_anchors(REPORT_SIGNER, append=DENY, audit=DENY),
    *_report_key(REPORT_SIGNER, sign=REACH, read_public=DENY),
    # The API gateway: its own server certificate, nothing else (not the API's certificate).
    *_secrets(GATEWAY, set()),
    *_kv_tampering(GATEWAY),
    *_signing_key(GATEWAY, sign=DENY, read_public=DENY),
    *_pki(GATEWAY, client=DENY, member=DENY, gateway=REACH),
    *_approle(GATEWAY, role_id_readable=DENY, wrapped_secret_id=DENY),
    *_policy_writes(GATEWAY, DENY),
    *_anchors(GATEWAY, append=DENY, audit=DENY),
    *_report_key(GATEWAY, sign=DENY, read_public=DENY),
    Case(GATEWAY, "write", API_CERT, DENY, CERT_BODY),
    Case(GATEWAY, "write", "auth/token/create", DENY, {"policies": [GATEWAY]}),
]
"""Break-glass's own reachable writes are replayed in the attack tests below, not
here: letting them through would rewrite the policies every other row depends on."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("vault-matrix"))
    running.root.write_data(f"audit-anchors/data/{SEEDED_ANCHOR}", data={"data": {"number": 1}})
    try:
        yield running
    finally:
        running.bao.stop()


@pytest.fixture(scope="module")
def clients(stack: Stack) -> dict[str, hvac.Client]:
    """One client per policy; the service's from a real AppRole login."""
    made = {
        policy: _client(stack, _person_token(stack, policy))
        for policy in (OPERATOR, BREAK_GLASS, CI, MEMBER, AUDITOR, BOOTSTRAP_ADMIN, REPORT_SIGNER)
    }
    made[APP] = _client(stack, _app_token(stack))
    made[GATEWAY] = gateway_vault_client(stack.root)  # exactly as devstack makes it
    return made


def _client(stack: Stack, token: str) -> hvac.Client:
    return hvac.Client(url=stack.bao.addr, token=token, verify=str(stack.bao.ca_file))


def _person_token(stack: Stack, policy: str) -> str:
    """A token as Vault hands it to a person or a pipeline: the policy plus ``default``."""
    token: str = stack.root.auth.token.create(policies=[policy], ttl="15m")["auth"]["client_token"]
    return token


def _app_token(stack: Stack) -> str:
    secret_id = stack.root.write_data(SECRET_ID, data={})["data"]["secret_id"]
    login = _client(stack, "").auth.approle.login(
        role_id=role_id(stack.root), secret_id=secret_id, use_token=False
    )
    assert login["auth"]["policies"] == [APP], "the service's token holds exactly its policy"
    token: str = login["auth"]["client_token"]
    return token


def attempt(client: hvac.Client, case: Case) -> bool:
    """Make the request; True unless the server refused it with 403 (permission denied)."""
    url = f"/v1/{case.path}"
    headers = {"X-Vault-Wrap-TTL": case.wrap_ttl} if case.wrap_ttl else None
    try:
        if case.operation == "read":
            client.adapter.get(url)
        elif case.operation == "list":
            client.adapter.list(url)
        elif case.operation == "delete":
            client.adapter.delete(url)
        else:
            client.adapter.post(url, json=case.body or {}, headers=headers)
    except hvac.exceptions.Forbidden:
        return False
    except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath):
        return True  # past the ACL: refused or absent for another reason
    return True


@pytest.mark.parametrize("case", MATRIX, ids=[case.id for case in MATRIX])
def test_policy_matrix(clients: dict[str, hvac.Client], case: Case) -> None:
    reached = attempt(clients[case.policy], case)
    expectation = "reach" if case.reach else "be denied"
    assert reached == case.reach, f"{case.policy} should {expectation} {case.operation} {case.path}"


def test_every_policy_in_bootstrap_is_in_the_matrix(stack: Stack) -> None:
    applied = {
        name
        for name in stack.root.sys.list_acl_policies()["data"]["keys"]
        if name.startswith("eventsvc-")
    }
    assert applied == {case.policy for case in MATRIX}


# --- the escalations of issue #15, replayed ------------------------------------------------


def test_operator_cannot_rewrite_its_own_policy(
    stack: Stack, clients: dict[str, hvac.Client]
) -> None:
    before = stack.root.read(f"sys/policies/acl/{OPERATOR}")["data"]["policy"]
    with pytest.raises(hvac.exceptions.Forbidden):
        clients[OPERATOR].sys.create_or_update_acl_policy(OPERATOR, ESCALATED_POLICY)
    assert stack.root.read(f"sys/policies/acl/{OPERATOR}")["data"]["policy"] == before
    with pytest.raises(hvac.exceptions.Forbidden):
        clients[OPERATOR].read(PEPPER)


def test_break_glass_can_change_grants_and_nothing_else(
    stack: Stack, clients: dict[str, hvac.Client]
) -> None:
    """Re-writing a policy with its own text: the grant it has, without changing anything."""
    breaker = clients[BREAK_GLASS]
    text = stack.root.read(f"sys/policies/acl/{APP}")["data"]["policy"]
    breaker.sys.create_or_update_acl_policy(APP, text)
    current = stack.root.read(APPROLE)["data"]
    breaker.write_data(APPROLE, data={"secret_id_num_uses": current["secret_id_num_uses"]})
    with pytest.raises(hvac.exceptions.Forbidden):
        breaker.read(AUDIT_KEY)


def test_ci_cannot_log_in_as_the_service(stack: Stack, clients: dict[str, hvac.Client]) -> None:
    """CI makes the wrapped secret_id, so it holds the wrapping token and can spend it
    (Vault cannot tell CI from the instance). What stops the login is the other half:
    CI cannot read the role_id. And the spent token makes the instance's login fail."""
    ci = clients[CI]
    wrapping_token = ci.write_data(SECRET_ID, data={}, wrap_ttl="60s")["wrap_info"]["token"]
    # By value, with its own token: denied (sys/wrapping/unwrap is validated before the
    # ACL for a malformed token, so only a real one, here, proves the denial).
    with pytest.raises(hvac.exceptions.Forbidden):
        ci.sys.unwrap(wrapping_token)
    with pytest.raises(hvac.exceptions.Forbidden):
        ci.read(ROLE_ID)
    secret_id = _client(stack, wrapping_token).sys.unwrap()["data"]["secret_id"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        _client(stack, "").auth.approle.login(
            role_id="00000000-0000-0000-0000-000000000000", secret_id=secret_id
        )
    with pytest.raises(hvac.exceptions.InvalidRequest):  # the instance notices
        _client(stack, "").sys.unwrap(wrapping_token)


def test_ci_cannot_issue_a_member_certificate(clients: dict[str, hvac.Client]) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        clients[CI].write_data(MEMBER_CERT, data=CERT_BODY)
    issued = clients[MEMBER].write_data(MEMBER_CERT, data=CERT_BODY)["data"]
    assert "OU=eventsvc-mongod" in _subject(issued["certificate"])


def _subject(pem: str) -> str:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()


def test_the_service_appends_anchors_and_can_take_none_back(
    stack: Stack, clients: dict[str, hvac.Client]
) -> None:
    """The real service token: a new anchor is written once; rewriting it, deleting,
    destroying or shortening its history is refused, and the first version stays."""
    app = clients[APP]
    path = "audit-anchors/data/eventsvc/attack-writer/1"
    app.write_data(path, data={"data": {"heads": "real"}, "options": {"cas": 0}})
    attacks: list[Callable[[], object]] = [
        lambda: app.write_data(path, data={"data": {"heads": "rewritten"}}),
        lambda: app.adapter.delete(f"/v1/{path}"),
        lambda: app.write_data(
            "audit-anchors/destroy/eventsvc/attack-writer/1", data={"versions": [1]}
        ),
        lambda: app.adapter.delete("/v1/audit-anchors/metadata/eventsvc/attack-writer/1"),
        lambda: app.write_data(
            "audit-anchors/metadata/eventsvc/attack-writer/1", data={"max_versions": 1}
        ),
    ]
    for attack in attacks:
        with pytest.raises(hvac.exceptions.Forbidden):
            attack()
    stored = stack.root.read(path)["data"]
    assert stored["data"] == {"heads": "real"}
    assert stored["metadata"]["version"] == 1


def test_the_service_can_sign_but_not_obtain_the_signing_key(
    clients: dict[str, hvac.Client],
) -> None:
    signed = clients[APP].write_data(SIGN, data=SIGN_BODY)["data"]["signature"]
    assert signed.startswith("vault:v1:")
    for path in (SIGNING_KEY, EXPORT, BACKUP):
        with pytest.raises(hvac.exceptions.Forbidden):
            clients[APP].read(path)


def test_the_operator_cannot_make_the_signing_key_exportable(
    stack: Stack, clients: dict[str, hvac.Client]
) -> None:
    """The operator creates the key (transit needs "update" for that), but re-posting it
    with exportable=true changes nothing, and keys/<name>/config is denied."""
    operator = clients[OPERATOR]
    operator.write_data(
        SIGNING_KEY, data={"type": "ed25519", "exportable": True, "allow_plaintext_backup": True}
    )
    with pytest.raises(hvac.exceptions.Forbidden):
        operator.write_data(f"{SIGNING_KEY}/config", data={"exportable": True})
    key = stack.root.read(SIGNING_KEY)["data"]
    assert (key["exportable"], key["allow_plaintext_backup"]) == (False, False)

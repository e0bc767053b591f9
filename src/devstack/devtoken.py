"""``python -m devstack token --scopes S,...``: an API token for the developer on the local stack.

A developer alone with ``make up`` has no second person holding a Vault
token for ``eventsvc token bootstrap``, yet must be able to try every
feature: create and revoke tokens, export and verify the audit trail. So the
dev stack mints, at start, a ``tokens:admin`` token for the local operator
(``.run/operator.toml``, 0600, alive as long as the stack: ``make down``
wipes the database). This command uses it through the API, as any operator
would (``POST /api/v1/tokens``, audited like every token creation), for a
token with the scopes asked for, valid one day (the API's shortest
lifetime), and writes it as a CLI config file ``.run/dev-token.toml`` (0600).

Nothing here exists outside the dev stack: the package is not in the
eventsvc wheel, and without the stack's ``operator.toml`` there is nothing
to mint with.
"""

from __future__ import annotations

from collections.abc import Sequence

from devstack.errors import StackError
from devstack.paths import StackPaths
from devstack.stack import write_cli_config
from eventsvc.cli.client import ClientError, EventsClient
from eventsvc.cli.config import ConfigError, ConfigFlags, load_config

OWNER = "devstack-developer"
TTL_DAYS = 1


def mint_dev_token(paths: StackPaths, scopes: Sequence[str]) -> str:
    """Mint a token with ``scopes`` through the local API; return the path of its config file."""
    if not paths.operator_config.is_file():
        raise StackError(
            "dev token", "no operator token: start the stack first (make up)", paths.stack_log
        )
    try:
        config = load_config(ConfigFlags(config_file=paths.operator_config), {})
        client = EventsClient(config)
        try:
            created = client.create_token(OWNER, list(scopes), TTL_DAYS)
        finally:
            client.close()
    except (ClientError, ConfigError) as exc:
        raise StackError("dev token", str(exc), paths.api_log) from None
    token = created.get("token")
    if not isinstance(token, str):
        raise StackError("dev token", "the API answered without a token", paths.api_log)
    return str(write_cli_config(paths, config.url, token, paths.dev_token_config))

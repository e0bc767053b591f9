"""Preparing the stack's database as the operator would: the schema, then the CLI's token.

This is the one place where the dev stack builds the service's stores itself
(with mongod's admin identity, before the API runs); everything else in the
stack only starts processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import hvac
from pymongo.errors import PyMongoError

from devstack.api import api_settings
from devstack.errors import StackError
from devstack.mongod import RunningMongod
from eventsvc.credentials import AUDIT_HMAC_SECRET, TOKEN_PEPPER_SECRET
from eventsvc.domain import SYSTEM_CONTEXT
from eventsvc.services import build_services
from eventsvc.store import StoreUnavailable
from eventsvc.vault.transit import TransitCheckpointSigner

CLI_TOKEN_LIFETIME = timedelta(days=1)


def prepare_database(
    mongod: RunningMongod,
    root: hvac.Client,
    env: Mapping[str, str],
    token_scopes: Sequence[str] = ("events:read", "events:write"),
) -> str:
    """As the operator: create the app's schema, mint the CLI's API token; return the token.

    Creating the schema before the API starts is a migration step: the API's
    workers then find every collection in place instead of racing to create
    them. The token's digest goes to MongoDB (keyed with the pepper from
    OpenBao KV); its plaintext is returned, never logged.
    """
    settings = api_settings(env)
    vault = settings.vault
    try:
        kv = f"{vault.kv_mount}/data/{vault.kv_path}"
        pepper_secret = root.read(f"{kv}/{TOKEN_PEPPER_SECRET}")["data"]["data"]
        audit_secret = root.read(f"{kv}/{AUDIT_HMAC_SECRET}")["data"]["data"]
        pepper = str(pepper_secret["token_pepper"]).encode()
        audit_key = str(audit_secret["audit_hmac_key"]).encode()
        with mongod.admin_client() as admin:
            services = build_services(
                admin[settings.mongodb_database],
                audit_key=audit_key,
                token_pepper=pepper,
                checkpoint_signer=TransitCheckpointSigner(lambda: root),
            )
            services.ensure_schema()
            minted = services.tokens.create(
                "devstack-cli", token_scopes, CLI_TOKEN_LIFETIME, SYSTEM_CONTEXT
            )
    except (PyMongoError, StoreUnavailable, hvac.exceptions.VaultError) as exc:
        raise StackError("database preparation", str(exc), mongod.logpath) from None
    return minted.token

"""Preparing the stack's database as a deployment would: the schema, then the CLI's token.

Two identities, as in production (DESIGN.md, "Two MongoDB identities"):

- the schema is created by the **migration** identity, a SCRAM user with the
  ``eventsvcMigration`` role (:func:`devstack.mongod.migration_role_privileges`)
  whose random password lives in this process's memory only: the same step
  ``eventsvc migrate`` runs at deploy time;
- the CLI's API token and the local operator's (``tokens:admin``, for
  ``python -m devstack token``) are minted with mongod's admin identity,
  standing in for the operator's ``eventsvc token bootstrap``.

This is the one place where the dev stack builds the service's stores itself
(before the API runs); everything else in the stack only starts processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import hvac
from pymongo.errors import PyMongoError

from devstack.api import api_settings
from devstack.errors import StackError
from devstack.mongod import RunningMongod
from eventsvc.credentials import AUDIT_HMAC_SECRET, TOKEN_PEPPER_SECRET
from eventsvc.dbschema import ensure_schema
from eventsvc.domain import SYSTEM_CONTEXT
from eventsvc.services import build_services
from eventsvc.store import StoreUnavailable
from eventsvc.vault.transit import TransitCheckpointSigner

CLI_TOKEN_LIFETIME = timedelta(days=1)
MIGRATION_USERNAME = "eventsvc-migration"
OPERATOR_SCOPE = "tokens:admin"


@dataclass(frozen=True)
class PreparedTokens:
    """The plaintext API tokens the dev stack hands to the developer (never logged)."""

    cli: str
    """The CLI's token (``.run/cli.toml``), with the scopes asked for."""
    operator: str
    """``tokens:admin`` only (``.run/operator.toml``): what ``devstack token`` mints with."""


def prepare_database(
    mongod: RunningMongod,
    root: hvac.Client,
    env: Mapping[str, str],
    token_scopes: Sequence[str] = ("events:read", "events:write"),
) -> PreparedTokens:
    """Create the schema as the migration identity, then mint the CLI's and the operator's tokens.

    The API's role cannot create collections or indexes, and refuses to
    start unless the schema is exactly in place: this step must come first.
    The tokens' digests go to MongoDB (keyed with the pepper from OpenBao
    KV) with their audit records; the plaintexts are returned, never logged.
    The operator token stands in for ``eventsvc token bootstrap``: a local
    stack has no second person holding a Vault token.
    """
    settings = api_settings(env)
    vault = settings.vault
    try:
        kv = f"{vault.kv_mount}/data/{vault.kv_path}"
        pepper_secret = root.read(f"{kv}/{TOKEN_PEPPER_SECRET}")["data"]["data"]
        audit_secret = root.read(f"{kv}/{AUDIT_HMAC_SECRET}")["data"]["data"]
        pepper = str(pepper_secret["token_pepper"]).encode()
        audit_key = str(audit_secret["audit_hmac_key"]).encode()
        migrate(mongod, settings.mongodb_database)
        with mongod.admin_client() as admin:
            services = build_services(
                admin[settings.mongodb_database],
                audit_key=audit_key,
                token_pepper=pepper,
                checkpoint_signer=TransitCheckpointSigner(lambda: root),
            )
            cli = services.tokens.create(
                "devstack-cli", token_scopes, CLI_TOKEN_LIFETIME, SYSTEM_CONTEXT
            )
            operator = services.tokens.create(
                "devstack-operator", [OPERATOR_SCOPE], CLI_TOKEN_LIFETIME, SYSTEM_CONTEXT
            )
    except (PyMongoError, StoreUnavailable, hvac.exceptions.VaultError) as exc:
        raise StackError("database preparation", str(exc), mongod.logpath) from None
    return PreparedTokens(cli=cli.token, operator=operator.token)


def migrate(mongod: RunningMongod, database: str) -> None:
    """Create the migration user (new random password, memory only) and run the migration."""
    password = secrets.token_urlsafe(32)
    mongod.create_migration_user_scram(MIGRATION_USERNAME, password, database)
    with mongod.user_client(MIGRATION_USERNAME, password, database) as client:
        ensure_schema(client[database])

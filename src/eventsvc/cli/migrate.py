"""``eventsvc migrate``: create the MongoDB schema with the migration credential, at deploy time.

The running app's MongoDB role cannot create collections, validators or
indexes, and the app refuses to start unless they are exactly what its
version expects. So each deployment runs this command first, as the
migration identity (role ``eventsvcMigration``: createCollection,
createIndex, collMod, listCollections, listIndexes, and nothing else).

Where MongoDB is comes from the service's own variables
(``EVENTSVC_MONGODB_HOSTS``, ``_REPLICA_SET``, ``_DATABASE``, ``_TLS``,
``_TLS_CA_FILE``, ``_TIMEOUT_MS``). The credential comes from variables of its
own, never from flags (argv is visible to every user of the machine) and
never from the service's settings (the service must not hold it):

- SCRAM: ``EVENTSVC_MIGRATION_MONGODB_USERNAME`` and ``EVENTSVC_MIGRATION_MONGODB_PASSWORD``;
- X.509: ``EVENTSVC_MIGRATION_MONGODB_TLS_CERT_KEY_FILE`` (a 0600 PEM file).

Exit codes as every command: 0 done, 1 MongoDB refused or failed, 2 configuration.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click
from pydantic import SecretStr, ValidationError

from eventsvc.cli.commands import CommandFailed, ConfigurationFailed
from eventsvc.cli.safe_text import one_line

USERNAME_ENV = "EVENTSVC_MIGRATION_MONGODB_USERNAME"
PASSWORD_ENV = "EVENTSVC_MIGRATION_MONGODB_PASSWORD"  # the variable's name
CERT_ENV = "EVENTSVC_MIGRATION_MONGODB_TLS_CERT_KEY_FILE"
UNAUTHORIZED = 13


@dataclass(frozen=True)
class MigrationCredential:
    """One of: a SCRAM user and password, or an X.509 client certificate file."""

    username: str | None = None
    password: SecretStr | None = None
    cert_key_file: Path | None = None


def migration_credential(environ: Mapping[str, str]) -> MigrationCredential:
    """Read exactly one credential from ``environ``; ConfigurationFailed says what is wrong."""
    username = environ.get(USERNAME_ENV, "").strip()
    password = environ.get(PASSWORD_ENV, "")
    cert = environ.get(CERT_ENV, "").strip()
    if cert and (username or password):
        raise ConfigurationFailed(f"set either {CERT_ENV} or {USERNAME_ENV}/{PASSWORD_ENV}")
    if cert:
        path = Path(cert).expanduser()
        if not path.is_file():
            raise ConfigurationFailed(f"{CERT_ENV}: {path} is not a readable file")
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationFailed(f"{CERT_ENV}: {path} holds a private key; chmod 600 it")
        return MigrationCredential(cert_key_file=path)
    if not (username and password):
        raise ConfigurationFailed(
            f"no migration credential: set {USERNAME_ENV} and {PASSWORD_ENV} (SCRAM) "
            f"or {CERT_ENV} (X.509)"
        )
    return MigrationCredential(username=username, password=SecretStr(password))


@click.command(name="migrate")
def migrate_command() -> None:
    """Create or update collections, validators and indexes (the migration credential).

    Run it before starting a new version of the service: the service only
    checks the schema and refuses to start when it differs. Idempotent. The
    credential is read from EVENTSVC_MIGRATION_MONGODB_USERNAME and
    EVENTSVC_MIGRATION_MONGODB_PASSWORD, or EVENTSVC_MIGRATION_MONGODB_TLS_CERT_KEY_FILE;
    MongoDB's address from the service's EVENTSVC_MONGODB_* variables.
    """
    # Imported here: the everyday client commands never load pymongo.
    from pymongo.errors import OperationFailure, PyMongoError

    from eventsvc.dbschema import COLLECTIONS, check_schema, ensure_schema
    from eventsvc.schema import SchemaMismatch
    from eventsvc.settings import Settings
    from eventsvc.store import connect

    credential = migration_credential(os.environ)
    try:
        settings = Settings()
    except ValidationError as error:
        raise ConfigurationFailed(f"configuration error: {one_line(str(error))}") from None
    client = connect(
        settings,
        username=credential.username,
        password=credential.password,
        tls_cert_key_file=credential.cert_key_file,
    )
    try:
        database = client[settings.mongodb_database]
        ensure_schema(database)
        check_schema(database)
    except OperationFailure as error:
        if error.code == UNAUTHORIZED:
            raise CommandFailed(
                "MongoDB refused the migration credential (Unauthorized): it needs the "
                f"eventsvcMigration role on {settings.mongodb_database}"
            ) from None
        raise CommandFailed(f"migration failed: {one_line(str(error))}") from None
    except (PyMongoError, SchemaMismatch) as error:
        raise CommandFailed(f"migration failed: {one_line(str(error))}") from None
    finally:
        client.close()
    click.echo(
        f"schema of {settings.mongodb_database} on {settings.mongodb_hosts} is ready: "
        f"{len(COLLECTIONS)} collections with their validators and indexes"
    )

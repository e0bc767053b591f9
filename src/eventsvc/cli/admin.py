"""Administration commands: ``eventsvc token ...`` and ``eventsvc audit ...``.

``token create|list|revoke`` and ``audit export`` call the API with the
caller's token, like every client command (tokens:admin, audit:read).

Two commands talk to Vault instead, with the operator's own Vault token:

- ``token bootstrap`` mints the first admin token (see :mod:`eventsvc.bootstrap`);
- ``audit verify`` gets the audit HMAC key, which the API never serves
  (or reads it from a 0600 key file), and verifies an exported file
  offline (see :mod:`eventsvc.cli.audit_file`).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from eventsvc.cli.client import JsonObject
from eventsvc.cli.commands import CommandFailed, ConfigurationFailed, api_client
from eventsvc.cli.config import ConfigError
from eventsvc.cli.render import print_json, print_token, print_tokens
from eventsvc.cli.safe_text import one_line
from eventsvc.cli.timestamps import TimestampParam
from eventsvc.files import write_private_file

if TYPE_CHECKING:
    from eventsvc.audit.signing import CheckpointKeys
    from eventsvc.vault.session import VaultSession

_TOKEN_ID = re.compile(r"[a-z0-9]{16}")
_TIMESTAMP = TimestampParam()
_FILE = click.Path(dir_okay=False, path_type=Path)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
MIN_AUDIT_KEY_BYTES = 32
STORE_WARNING = (
    "warning: this token is shown once and cannot be recovered; store it now"
    " (password manager or a 0600 config file), never in shell history"
)


class TokenIdParam(click.ParamType[str]):
    """A token id: the 16 lower-case letters or digits after ``evt_``."""

    name = "token_id"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        """Refuse anything else; a whole token pasted by mistake is not echoed back."""
        text = str(value).strip()
        if text.startswith("evt_"):
            self.fail("give the token's id (16 characters), not the token itself", param, ctx)
        if not _TOKEN_ID.fullmatch(text):
            self.fail(f"{one_line(text)!r} is not a token id (16 a-z/0-9)", param, ctx)
        return text


# --- tokens --------------------------------------------------------------------------------


@click.group(name="token")
def token_group() -> None:
    """Create, list and revoke API tokens (needs tokens:admin); bootstrap the first one."""


@token_group.command(name="create")
@click.option("--owner", required=True, help="Who the token is for (person or service).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="A scope such as events:read, events:write, audit:read; repeatable.",
)
@click.option("--ttl-days", type=click.IntRange(1, 365), help="Lifetime in days [server: 30].")
@_JSON
@click.pass_context
def token_create(
    ctx: click.Context, owner: str, scopes: tuple[str, ...], ttl_days: int | None, as_json: bool
) -> None:
    """Create a token for OWNER; it is printed once, only a digest is kept."""
    created = api_client(ctx).create_token(owner, scopes, ttl_days)
    if not isinstance(created.get("token"), str):
        raise CommandFailed("unexpected response from server: no token in the answer")
    print_json(created) if as_json else print_token(created)
    click.echo(STORE_WARNING, err=True)


@token_group.command(name="list")
@_JSON
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List token records (id, owner, scopes, expiry, revoked); never a token."""
    listing = api_client(ctx).list_tokens()
    items = [_without_token(item) for item in listing["items"]]
    print_json({"items": items}) if as_json else print_tokens(items)


@token_group.command(name="revoke")
@click.argument("token_id", metavar="ID", type=TokenIdParam())
@_JSON
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke the token ID at once; its record stays listed, with revoked_at."""
    record = _without_token(api_client(ctx).revoke_token(token_id))
    print_json(record) if as_json else click.echo(f"revoked token {token_id}")


@token_group.command(name="bootstrap")
@click.option("--owner", required=True, help="Who holds the first admin token.")
@click.option(
    "--scope", "extra_scopes", multiple=True, help="A scope besides tokens:admin; repeatable."
)
@click.option(
    "--ttl-days", type=click.IntRange(1, 7), default=1, show_default=True, help="Lifetime."
)
@_JSON
def token_bootstrap(
    owner: str, extra_scopes: tuple[str, ...], ttl_days: int, as_json: bool
) -> None:
    """Mint the first admin token through Vault (operator; VAULT_ADDR, VAULT_TOKEN).

    Reads the token pepper from kv/eventsvc/token-pepper, writes only the token's id,
    digest, owner, scopes and expiry to kv/eventsvc/bootstrap-token (only if
    that is absent), and prints the token once. The service imports it when
    it next starts. Use it to create named admin tokens, then revoke it.
    """
    from eventsvc.bootstrap import BOOTSTRAP_SECRET, mint_bootstrap_token
    from eventsvc.cli.operator_vault import operator_session
    from eventsvc.credentials import TOKEN_PEPPER_SECRET
    from eventsvc.vault.errors import VaultError

    path = f"kv/data/eventsvc/{BOOTSTRAP_SECRET}"
    try:
        with operator_session(os.environ) as session:
            pepper = _app_secret(session, TOKEN_PEPPER_SECRET, "token_pepper")
            token, record = mint_bootstrap_token(
                pepper, owner, extra_scopes, timedelta(days=ttl_days)
            )
            _write_once(session, path, record.to_kv())
    except ValueError as exc:  # a bad owner or scope, before anything was written
        raise click.UsageError(str(exc)) from None
    except VaultError as exc:
        raise CommandFailed(f"vault: {exc}") from None
    except ConfigError as exc:
        raise ConfigurationFailed(str(exc)) from None
    document = {"token": token, **record.to_kv(), "vault_path": path}
    if as_json:
        print_json(document)
    else:
        click.echo(f"token       {token}")
        click.echo(f"id          {record.token_id}")
        click.echo(f"owner       {one_line(record.owner)}")
        click.echo(f"scopes      {', '.join(sorted(record.scopes))}")
        click.echo(f"expires_at  {record.to_kv()['expires_at']}")
        click.echo(f"stored as   {path} (digest only; imported at the next service start)")
    click.echo(STORE_WARNING, err=True)


def _write_once(session: VaultSession, path: str, data: dict[str, Any]) -> None:
    """Create the record only if absent (check-and-set 0; the policy grants create only)."""
    from eventsvc.vault.errors import VaultError, VaultPermissionDenied

    try:
        session.write(path, {"options": {"cas": 0}, "data": data})
    except (VaultPermissionDenied, VaultError) as exc:
        if isinstance(exc, VaultPermissionDenied) or "check-and-set" in str(exc):
            raise CommandFailed(
                f"vault refused to write {path}: a bootstrap token is already there (the"
                " service imports it when it starts; replacing it needs an operator allowed to"
                " delete it), or this Vault token lacks the eventsvc-bootstrap-admin policy"
            ) from None
        raise


def _without_token(record: Any) -> JsonObject:
    """A token record as listed; a ``token`` field, should a server send one, is dropped."""
    if not isinstance(record, dict):
        raise CommandFailed("unexpected response from server: a token record is not an object")
    return {key: value for key, value in record.items() if key != "token"}


def _app_secret(session: VaultSession, secret: str, name: str) -> bytes:
    """``name`` from the KV secret ``kv/eventsvc/<secret>``, as bytes."""
    value = session.read_app_secret(secret).get(name)
    if not isinstance(value, str) or not value:
        raise CommandFailed(f"vault: {name} is missing from kv/eventsvc/{secret}")
    return value.encode()


# --- audit ---------------------------------------------------------------------------------


@click.group(name="audit")
def audit_group() -> None:
    """Export the audit trail (needs audit:read) and verify an export offline."""


@audit_group.command(name="export")
@click.option("--from", "start", type=_TIMESTAMP, help="Records at or after this time.")
@click.option("--to", "end", type=_TIMESTAMP, help="Records before this time.")
@click.option("--output", type=_FILE, help="Write to FILE (mode 0600) instead of stdout.")
@click.pass_context
def audit_export(
    ctx: click.Context, start: str | None, end: str | None, output: Path | None
) -> None:
    """Export records and checkpoints as JSON lines, exactly as the server sends them."""
    chunks = api_client(ctx).iter_audit_export(start, end)
    if output is None:
        stdout = sys.stdout.buffer  # CliRunner and real runs both provide it
        for chunk in chunks:
            stdout.write(chunk)
        stdout.flush()
        return
    counted = _LineCounter(chunks)
    try:
        write_private_file(output, counted)
    except OSError as exc:
        raise ConfigurationFailed(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"exported {counted.lines} line(s) to {output}")


class _LineCounter:
    """Passes the export's chunks through, counting the lines it reports at the end."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.lines = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.lines += chunk.count(b"\n")
            yield chunk


@audit_group.command(name="verify")
@click.option(
    "--file",
    "export_file",
    type=click.File("rb"),
    required=True,
    help="An `audit export` file ('-' for stdin).",
)
@click.option(
    "--key-file",
    type=_FILE,
    help="The audit HMAC key in a 0600 file [default: read from Vault kv/eventsvc/audit-hmac].",
)
@click.option(
    "--checkpoint-key",
    "checkpoint_key_file",
    type=_FILE,
    help="The checkpoints' Ed25519 public key, PEM or base64 [default: read from Vault"
    " transit/keys/eventsvc-audit-checkpoint].",
)
@click.option(
    "--anchors",
    "use_anchors",
    is_flag=True,
    help="Also check against each writer's last checkpoint anchored in Vault (audit-anchors/):"
    " reports records and checkpoints the export lacks, even if the database was emptied.",
)
@click.option(
    "--partial",
    is_flag=True,
    help="The export has --from: chains may start after their first record.",
)
@_JSON
def audit_verify(
    export_file: IO[bytes],
    key_file: Path | None,
    checkpoint_key_file: Path | None,
    use_anchors: bool,
    partial: bool,
    as_json: bool,
) -> None:
    """Verify every chain in an exported audit file; exit 1 naming each broken chain.

    The HMAC key comes from --key-file, the checkpoints' public key from
    --checkpoint-key; either, if not given, from Vault with the auditor's
    token (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT; policy eventsvc-auditor).
    The API never serves the HMAC key: whoever holds it could forge records.
    It cannot forge checkpoints, which only Vault can sign.
    """
    from eventsvc.cli.audit_file import verify_export

    key, checkpoint_keys = _verification_keys(key_file, checkpoint_key_file)
    anchors = _anchors_from_vault() if use_anchors else []
    report = verify_export(export_file, key, checkpoint_keys, partial=partial, anchors=anchors)
    if as_json:
        print_json(report.as_json())
    else:
        for problem in report.problems:
            click.echo(one_line(problem.describe(), limit=1000))
        for unreadable in report.unreadable_lines:
            click.echo(f"file: {unreadable}")
        if report.bad_checkpoints and not report.problems:
            click.echo(f"checkpoints: {report.bad_checkpoints} with a bad signature")
        for problem_text in report.checkpoint_chain_problems:
            click.echo(f"checkpoints: {one_line(problem_text, limit=1000)}")
        for anchored in report.anchored:
            click.echo(f"anchor: {one_line(anchored, limit=1000)}")
    if report.ok:
        if not as_json:
            click.echo(
                f"ok: {len(report.chains)} chain(s), {report.records_checked} record(s),"
                f" {report.checkpoints_checked} checkpoint(s) verified"
            )
        return
    broken = len(report.problems)
    raise CommandFailed(
        f"the audit trail does not verify: {broken} of {len(report.chains)} chain(s) broken"
        + (
            f", {len(report.unreadable_lines)} unreadable line(s)"
            if report.unreadable_lines
            else ""
        )
    )


def _read_key_file(path: Path) -> bytes:
    """The key as it is stored in Vault (text); refused if others may read the file."""
    try:
        with path.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            key = handle.read().strip()
    except OSError as exc:
        raise ConfigurationFailed(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigurationFailed(
            f"key file {path} is readable by others (mode {mode:04o}); run: chmod 600 {path}"
        )
    if len(key) < MIN_AUDIT_KEY_BYTES:
        raise ConfigurationFailed(f"key file {path} holds no audit key (too short)")
    return key


def _verification_keys(
    key_file: Path | None, checkpoint_key_file: Path | None
) -> tuple[bytes, CheckpointKeys]:
    """The HMAC key and the checkpoint public keys: from files, else from Vault (one session)."""
    from eventsvc.audit.signing import load_public_key

    checkpoint_keys: CheckpointKeys | None = None
    if checkpoint_key_file is not None:
        try:
            checkpoint_keys = load_public_key(checkpoint_key_file.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigurationFailed(
                f"cannot read checkpoint key {checkpoint_key_file}: {exc}"
            ) from None
    key = _read_key_file(key_file) if key_file is not None else None
    if key is not None and checkpoint_keys is not None:
        return key, checkpoint_keys
    from_vault_key, from_vault_public = _keys_from_vault(
        need_hmac=key is None, need_public=checkpoint_keys is None
    )
    return key or from_vault_key, checkpoint_keys or from_vault_public


def _anchors_from_vault() -> list[dict[str, Any]]:
    """Each writer's last anchored checkpoint, read with the auditor's token."""
    from eventsvc.cli.operator_vault import operator_session
    from eventsvc.vault.anchors import latest_anchors
    from eventsvc.vault.errors import VaultError

    try:
        with operator_session(os.environ) as session:
            return latest_anchors(session.list_keys, session.read_data)
    except VaultError as exc:
        raise CommandFailed(f"vault: anchors: {exc}") from None
    except ConfigError as exc:
        raise ConfigurationFailed(f"{exc} (--anchors reads them from Vault)") from None


def _keys_from_vault(*, need_hmac: bool, need_public: bool) -> tuple[bytes, CheckpointKeys]:
    from eventsvc.audit.signing import public_keys_from_transit
    from eventsvc.cli.operator_vault import operator_session
    from eventsvc.credentials import AUDIT_HMAC_SECRET
    from eventsvc.vault.errors import VaultError
    from eventsvc.vault.transit import CHECKPOINT_KEY, TRANSIT_MOUNT

    key = b""
    public: CheckpointKeys = {}
    try:
        with operator_session(os.environ) as session:
            if need_hmac:
                key = _app_secret(session, AUDIT_HMAC_SECRET, "audit_hmac_key")
            if need_public:
                data = session.read(f"{TRANSIT_MOUNT}/keys/{CHECKPOINT_KEY}")["data"]
                public = public_keys_from_transit(data)
    except VaultError as exc:
        raise CommandFailed(f"vault: {exc}") from None
    except ValueError as exc:
        raise CommandFailed(f"vault: the checkpoint key: {exc}") from None
    except ConfigError as exc:
        raise ConfigurationFailed(f"{exc} (or give --key-file and --checkpoint-key)") from None
    return key, public


__all__ = ["audit_group", "token_group"]

"""The ``eventsvc`` command: client commands for the events API, and ``serve``.

Exit codes: 0 success; 1 the server, the network or TLS failed (one line on
stderr); 2 the invocation or the configuration is wrong (click usage errors,
unusable config). No command ever prints a traceback or the token.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

import click

from eventsvc import __version__
from eventsvc.cli.client import ClientError, EventsClient, JsonObject
from eventsvc.cli.config import MAX_TIMEOUT_SECONDS, ConfigError, ConfigFlags, load_config
from eventsvc.cli.importer import ImportFileError, read_batches, send
from eventsvc.cli.render import print_event, print_events, print_json
from eventsvc.cli.safe_text import one_line
from eventsvc.cli.timestamps import TimestampParam

_EVENT_ID = re.compile(r"[0-9a-fA-F]{24}")
_TIMESTAMP = TimestampParam()
_FILE = click.Path(dir_okay=False, path_type=Path)


class CommandFailed(click.ClickException):
    """The server, the network or TLS failed: one ``error: ...`` line, exit 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        """Print one line; server text is already escaped, ours is escaped here too."""
        click.echo(f"error: {one_line(self.message, limit=1000)}", err=True)


class ConfigurationFailed(CommandFailed):
    """The configuration is unusable; like a usage error, retrying will not help: exit 2."""

    exit_code = 2


class EventsvcGroup(click.Group):
    """Maps our two error types to exit codes in one place, so commands stay plain."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; client failures exit 1, configuration failures exit 2."""
        try:
            return super().invoke(ctx)
        except ClientError as exc:
            raise CommandFailed(str(exc)) from None
        except ConfigError as exc:
            raise ConfigurationFailed(str(exc)) from None


class EventIdParam(click.ParamType[str]):
    """An event id: 24 hex digits (a MongoDB ObjectId), normalised to lower case."""

    name = "id"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        """Refuse anything else before it goes near a URL."""
        text = str(value).strip()
        if not _EVENT_ID.fullmatch(text):
            self.fail(f"{one_line(text)!r} is not an event id (24 hex digits)", param, ctx)
        return text.lower()


_ID = EventIdParam()


@click.group(cls=EventsvcGroup)
@click.version_option(
    __version__, "--version", prog_name="eventsvc", message="%(prog)s %(version)s"
)
@click.option("--url", help="API base URL [env EVENTSVC_URL; default https://127.0.0.1:8443].")
@click.option(
    "--ca-file", type=_FILE, help="CA bundle to verify the server [env EVENTSVC_CA_FILE]."
)
@click.option("--client-cert", type=_FILE, help="Client certificate (PEM) for mutual TLS.")
@click.option("--client-key", type=_FILE, help="Private key of the client certificate.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, max=MAX_TIMEOUT_SECONDS, min_open=True),
    help="Seconds to wait for the server [env EVENTSVC_TIMEOUT; default 10].",
)
@click.option("--config", "config_file", type=_FILE, help="TOML config file [env EVENTSVC_CONFIG].")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    ca_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    timeout: float | None,
    config_file: Path | None,
) -> None:
    """Record, stop, list and inspect events on an eventsvc server.

    The bearer token is read from EVENTSVC_TOKEN or the config file (mode 0600),
    never from a flag.
    """
    ctx.obj = ConfigFlags(
        config_file=config_file,
        url=url,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
        timeout=timeout,
    )


def api_client(ctx: click.Context) -> EventsClient:
    """Build the client from the merged configuration; closed when the command ends."""
    flags = ctx.find_object(ConfigFlags) or ConfigFlags()
    client = EventsClient(load_config(flags, os.environ))
    ctx.call_on_close(client.close)
    return client


def _parse_attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    """Turn ``k=v`` pairs into a dict; a malformed or repeated key is a usage error."""
    attributes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--attr")
        if key in attributes:
            raise click.BadParameter(f"key {key!r} given twice", param_hint="--attr")
        attributes[key] = value
    return attributes


_JSON = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON document.")


@cli.command()
@click.argument("name")
@click.option("--at", "start_event", type=_TIMESTAMP, help="Start time (RFC 3339 or 'now').")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="Attribute; repeatable.")
@_JSON
@click.pass_context
def start(
    ctx: click.Context, name: str, start_event: str | None, attrs: tuple[str, ...], as_json: bool
) -> None:
    """Start an event called NAME (default start time: the server's clock)."""
    attributes = _parse_attributes(attrs)
    event = api_client(ctx).create_event(name, start_event, attributes)
    print_json(event) if as_json else print_event(event)


@cli.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, file: Path) -> None:
    """Create the events of FILE, one JSON object a line, in batches of up to 100.

    Each line: {"name": ..., "start_event"?: ..., "attributes"?: {...},
    "idempotency_key"?: ...}. Every line is checked before anything is sent;
    each batch is all or nothing; lines with an idempotency_key replay when
    the file is imported again.
    """
    try:
        batches = read_batches(file)
    except ImportFileError as exc:
        raise click.UsageError(str(exc)) from None
    summary = send(api_client(ctx), batches)
    click.echo(
        f"imported {summary.imported} events: {summary.created} created, "
        f"{summary.replayed} replayed"
    )


@cli.command()
@click.argument("event_id", metavar="ID", type=_ID)
@click.option("--at", "stop_event", type=_TIMESTAMP, help="Stop time (RFC 3339 or 'now').")
@_JSON
@click.pass_context
def stop(ctx: click.Context, event_id: str, stop_event: str | None, as_json: bool) -> None:
    """Stop the running event ID (default stop time: the server's clock)."""
    event = api_client(ctx).stop_event(event_id, stop_event)
    print_json(event) if as_json else print_event(event)


@cli.command(name="list")
@click.option("--from", "from_", type=_TIMESTAMP, help="Only events starting at or after this.")
@click.option("--to", type=_TIMESTAMP, help="Only events starting before this.")
@click.option("--name", help="Only events with this name.")
@click.option("--open", "only_open", is_flag=True, help="Only running events.")
@click.option("--stopped", "only_stopped", is_flag=True, help="Only stopped events.")
@click.option("--limit", type=click.IntRange(min=1), help="Page size.")
@click.option("--all", "all_pages", is_flag=True, help="Follow 'next' cursors to the end.")
@_JSON
@click.pass_context
def list_(
    ctx: click.Context,
    from_: str | None,
    to: str | None,
    name: str | None,
    only_open: bool,
    only_stopped: bool,
    limit: int | None,
    all_pages: bool,
    as_json: bool,
) -> None:
    """List events, newest first.

    With --all every page is fetched and --json prints one document whose
    "items" hold all of them and whose "next" is null.
    """
    if only_open and only_stopped:
        raise click.UsageError("--open and --stopped cannot be used together")
    status = "open" if only_open else "stopped" if only_stopped else None
    given = {"from": from_, "to": to, "name": name, "status": status, "limit": limit}
    filters = {key: str(value) for key, value in given.items() if value is not None}
    client = api_client(ctx)
    if all_pages:
        items = [item for page in client.iter_pages(filters) for item in page["items"]]
        page: JsonObject = {"items": items, "next": None}
    else:
        page = client.list_events(filters)
    if as_json:
        print_json(page)
        return
    print_events(page["items"])
    if page.get("next"):
        click.echo("more events exist: use --all, or a narrower --from/--to", err=True)


@cli.command()
@click.argument("event_id", metavar="ID", type=_ID)
@_JSON
@click.pass_context
def show(ctx: click.Context, event_id: str, as_json: bool) -> None:
    """Show the event ID."""
    event = api_client(ctx).get_event(event_id)
    print_json(event) if as_json else print_event(event)


@cli.command()
@click.argument("event_id", metavar="ID", type=_ID)
@click.pass_context
def delete(ctx: click.Context, event_id: str) -> None:
    """Delete the event ID."""
    api_client(ctx).delete_event(event_id)
    click.echo(f"deleted event {event_id}")


@cli.command()
def serve() -> None:
    """Run the API server (gunicorn, production settings from EVENTSVC_* variables).

    Imported only here, so client commands never load the server's dependencies.
    """
    try:
        server = importlib.import_module("eventsvc.server")
    except ImportError as exc:
        raise CommandFailed(f"cannot load the server: {exc}") from None
    server.main()

"""Output: rich tables for people, the API's JSON unchanged for scripts.

Server text goes into tables as ``rich.text.Text`` (never as markup
strings), after escaping non-printable characters, so an event named
``[red]`` or containing an escape sequence is shown literally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from eventsvc.cli.safe_text import escape_unprintable

# Piped output is read by grep and awk: one row per line, not 80-column wraps.
PIPE_WIDTH = 200
_FRACTION = re.compile(r"(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+Z")


def print_json(document: object) -> None:
    """Print one JSON document; ASCII-only so no raw control character reaches the terminal."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=True))


def print_events(events: Iterable[Mapping[str, Any]]) -> None:
    """Print events as a table, newest first as the API returns them."""
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("NAME", overflow="fold")
    table.add_column("START", no_wrap=True)
    table.add_column("STOP", no_wrap=True)
    table.add_column("ATTRIBUTES", overflow="fold")
    count = 0
    for event in events:
        count += 1
        table.add_row(
            _cell(event.get("id")),
            _cell(event.get("name")),
            _cell(_seconds(event.get("start_event"))),
            _stop_cell(_seconds(event.get("stop_event"))),
            _cell(_attributes(event.get("attributes"))),
        )
    if count == 0:
        click.echo("no events")
        return
    _console().print(table)


def print_event(event: Mapping[str, Any]) -> None:
    """Print one event as 'field  value' rows."""
    table = Table(box=None, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key in ("id", "name", "start_event", "stop_event", "attributes"):
        value = event.get(key)
        if key == "stop_event":
            table.add_row(key, _stop_cell(value))
        elif key == "attributes":
            table.add_row(key, _cell(_attributes(value)))
        else:
            table.add_row(key, _cell(value))
    for key in ("created_by", "created_at", "updated_at", "version"):
        if key in event:
            table.add_row(key, _cell(event[key]))
    _console().print(table)


def print_tokens(tokens: Iterable[Mapping[str, Any]]) -> None:
    """Print token records as a table; a record never holds the token itself."""
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("OWNER", overflow="fold")
    table.add_column("SCOPES", overflow="fold")
    table.add_column("EXPIRES", no_wrap=True)
    table.add_column("REVOKED", no_wrap=True)
    count = 0
    for token in tokens:
        count += 1
        scopes = token.get("scopes")
        revoked = token.get("revoked_at")
        table.add_row(
            _cell(token.get("id")),
            _cell(token.get("owner")),
            _cell(",".join(str(s) for s in scopes) if isinstance(scopes, list) else scopes),
            _cell(_seconds(token.get("expires_at"))),
            Text("no", style="green") if revoked is None else _cell(_seconds(revoked)),
        )
    if count == 0:
        click.echo("no tokens")
        return
    _console().print(table)


def print_token(created: Mapping[str, Any]) -> None:
    """Print a new token (its only appearance) and its record as 'field  value' rows."""
    table = Table(box=None, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key in ("token", "id", "owner", "scopes", "created_at", "expires_at", "created_by"):
        value = created.get(key)
        if key == "scopes" and isinstance(value, list):
            value = ", ".join(str(scope) for scope in value)
        table.add_row(key, _cell(value))
    _console().print(table)


def _console() -> Console:
    """A console with markup, emoji and highlighting off: we print data, not templates."""
    console = Console(markup=False, emoji=False, highlight=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def _cell(value: object) -> Text:
    """Literal, escaped table cell text."""
    return Text(escape_unprintable("" if value is None else str(value)))


def _seconds(value: object) -> object:
    """A list shows times to the second; ``show`` and ``--json`` keep the milliseconds."""
    if isinstance(value, str):
        match = _FRACTION.fullmatch(value)
        if match:
            return match.group("seconds") + "Z"
    return value


def _stop_cell(value: object) -> Text:
    """The stop time, or a visible 'open' for running events."""
    return Text("open", style="green") if value is None else _cell(value)


def _attributes(value: object) -> str:
    """Attributes as 'k=v, k=v', sorted for a stable display."""
    if not isinstance(value, Mapping):
        return ""
    return ", ".join(f"{key}={value[key]}" for key in sorted(value))

"""The ``eventsvc`` command line (entry point ``eventsvc.cli:main``)."""

from __future__ import annotations

from eventsvc.cli.admin import audit_group, token_group
from eventsvc.cli.commands import cli
from eventsvc.cli.migrate import migrate_command

cli.add_command(token_group)
cli.add_command(audit_group)
cli.add_command(migrate_command)


def main() -> None:
    """Run the command line; click turns errors into messages and exit codes."""
    cli(prog_name="eventsvc")


__all__ = ["cli", "main"]

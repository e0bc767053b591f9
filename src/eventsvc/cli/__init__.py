"""The ``eventsvc`` command line (entry point ``eventsvc.cli:main``)."""

from __future__ import annotations

from eventsvc.cli.admin import audit_group, token_group
from eventsvc.cli.commands import cli

cli.add_command(token_group)
cli.add_command(audit_group)


def main() -> None:
    """Run the command line; click turns errors into messages and exit codes."""
    cli(prog_name="eventsvc")


__all__ = ["cli", "main"]

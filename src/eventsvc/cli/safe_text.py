"""Make text from the server safe to show in a terminal.

Event names, attributes and error details are chosen by whoever wrote them,
not by the person reading. An escape sequence could rewrite the screen, a
bidi override could reorder what is read, a newline could fake an extra
output line. Every non-printable character is shown as a ``\\uXXXX`` escape.
"""

from __future__ import annotations

MAX_LINE_CHARS = 300


def escape_unprintable(text: str) -> str:
    """Replace every non-printable character (controls, bidi, separators) by ``\\uXXXX``."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def one_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Escape and truncate, so a server message stays one bounded line."""
    cleaned = escape_unprintable(text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"

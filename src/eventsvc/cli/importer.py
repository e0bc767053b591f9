"""``eventsvc import FILE``: events from a JSON-lines file, sent in batches.

Each non-empty line is one event as ``POST /api/v1/events:batch`` takes it:
``{"name": ..., "start_event"?: ..., "attributes"?: {...}, "idempotency_key"?: ...}``.
The whole file is read and checked for shape before anything is sent, so a
malformed line stops the command with its line number and nothing written.
The server checks each event fully; each batch (up to MAX_BATCH_EVENTS
events, at most MAX_BATCH_BYTES of JSON) is one transaction, so a batch the
server refuses writes nothing, but the batches before it stay imported.
Lines with an ``idempotency_key`` make a re-run safe: they replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eventsvc.cli.client import ClientError, EventsClient, JsonObject
from eventsvc.domain import MAX_BATCH_EVENTS

MAX_BATCH_BYTES = 48 * 1024  # below the server's default 64 KiB body limit
EVENT_FIELDS = frozenset({"name", "start_event", "attributes", "idempotency_key"})


class ImportFileError(ValueError):
    """A line of the file is not an event object: nothing is sent."""


@dataclass(frozen=True)
class Batch:
    """Consecutive events of the file, sent together; lines are 1-based."""

    first_line: int
    last_line: int
    events: list[JsonObject]


@dataclass
class ImportSummary:
    created: int = 0
    replayed: int = 0

    @property
    def imported(self) -> int:
        return self.created + self.replayed


def read_batches(path: Path) -> list[Batch]:
    """Every event of ``path``, checked for shape and grouped into batches."""
    try:
        with path.open(encoding="utf-8") as lines:
            events = list(_events(lines))
    except OSError as error:
        raise ImportFileError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{path} is not UTF-8 text") from None
    if not events:
        raise ImportFileError(f"{path} holds no events")
    return list(_batches(events))


def _events(lines: Iterable[str]) -> Iterator[tuple[int, JsonObject, int]]:
    """(line number, event, encoded size) for each non-empty line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise ImportFileError(f"line {number}: not valid JSON") from None
        if not isinstance(event, dict):
            raise ImportFileError(f"line {number}: not a JSON object")
        unknown = sorted(set(event) - EVENT_FIELDS)
        if unknown:
            raise ImportFileError(f"line {number}: unknown field(s) {', '.join(unknown)}")
        if "name" not in event:
            raise ImportFileError(f"line {number}: an event needs a name")
        size = len(json.dumps(event).encode())
        if size > MAX_BATCH_BYTES:
            raise ImportFileError(
                f"line {number}: the event is larger than {MAX_BATCH_BYTES} bytes"
            )
        yield number, event, size


def _batches(events: list[tuple[int, JsonObject, int]]) -> Iterator[Batch]:
    current: list[tuple[int, JsonObject, int]] = []
    size = 0
    for event in events:
        if current and (len(current) == MAX_BATCH_EVENTS or size + event[2] > MAX_BATCH_BYTES):
            yield _batch(current)
            current, size = [], 0
        current.append(event)
        size += event[2]
    yield _batch(current)


def _batch(events: list[tuple[int, JsonObject, int]]) -> Batch:
    return Batch(events[0][0], events[-1][0], [event for _, event, _ in events])


def send(client: EventsClient, batches: list[Batch]) -> ImportSummary:
    """Send the batches in order; on a failure, say which lines were imported."""
    summary = ImportSummary()
    for batch in batches:
        try:
            statuses = client.create_events_batch(batch.events)
        except ClientError as error:
            done = (
                f"lines up to {batch.first_line - 1} were imported ({summary.imported} events)"
                if summary.imported
                else "nothing was imported"
            )
            raise ClientError(
                f"lines {batch.first_line}-{batch.last_line}: {error}; {done}"
            ) from None
        summary.created += statuses.count(201)
        summary.replayed += statuses.count(200)
    return summary

"""Verify an exported audit trail (``eventsvc audit export``) offline, with the audit key.

The API serves the trail but never the key, so whoever verifies holds the
key themselves (an auditor's Vault token, or a key file). Verifying here
applies :mod:`eventsvc.audit.verify`'s own chain walk and diagnosis to the file's
lines, so a file and the database are judged by the same code: the first
broken link of each chain, named as modified, deleted, inserted,
reordered, truncated (against a signed checkpoint) or bad-checkpoint.

What a file adds to the database case:

- **Line order.** The export lists records by ``(time, chain, sequence)``.
  When every record of a chain is authentic but its lines are not in that
  order, lines were moved: "reordered", at the first record that comes too
  late.
- **Partial exports.** An export with ``--from`` starts chains in the middle.
  By default a chain must start at sequence 1 (a full export), so deleting
  a chain's first lines is noticed; with ``partial=True`` a chain may start
  at any record, whose ``prev_hash`` is then taken on trust, and checkpoint
  heads before the first record in the file are ignored.
- **Unreadable lines** (not JSON, unknown ``type``) are reported by line
  number: they belong to no chain that could be checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The chain walk, its diagnosis and the reading of checkpoints are
# eventsvc.audit.verify's own, reused so that the rules for a file never drift
# from the database's. Neither module imports pymongo.
from eventsvc.audit.record import GENESIS, ChainHead
from eventsvc.audit.signing import CheckpointKeys
from eventsvc.audit.verify import (
    ChainReport,
    VerifyReport,
    checkpoint_verdicts,
    read_checkpoints,
    verify_chain,
)

Document = dict[str, Any]


@dataclass(frozen=True)
class ExportReport(VerifyReport):
    """Every chain's verdict in one exported file, plus what could not be read."""

    unreadable_lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.unreadable_lines and super().ok

    def as_json(self) -> Document:
        """A JSON document for ``--json``: verdicts only, no record content."""
        return {
            "ok": self.ok,
            "records_checked": self.records_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "bad_checkpoints": self.bad_checkpoints,
            "checkpoint_chain_problems": list(self.checkpoint_chain_problems),
            "anchored": list(self.anchored),
            "unreadable_lines": list(self.unreadable_lines),
            "chains": [
                {
                    "chain": report.chain,
                    "ok": report.ok,
                    "records_checked": report.records_checked,
                    "kind": report.kind,
                    "sequence": report.broken_sequence,
                    "message": report.message,
                }
                for report in self.chains
            ],
        }


@dataclass
class _ParsedExport:
    records: dict[str, list[Document]]  # chain -> records, in file order
    checkpoints: list[Document]
    unreadable: list[str]


def verify_export(
    lines: Iterable[str | bytes],
    hmac_key: bytes,
    checkpoint_keys: CheckpointKeys,
    *,
    partial: bool = False,
    anchors: Iterable[Mapping[str, Any]] = (),
) -> ExportReport:
    """Verify the NDJSON lines of an audit export; see the module docstring for the rules.

    Records need the HMAC key; checkpoints only the public checkpoint key(s).
    """
    parsed = _parse(lines)
    checkpoints = read_checkpoints(
        parsed.checkpoints, checkpoint_keys, partial=partial, anchors=anchors
    )
    reports: list[ChainReport] = []
    for chain, records in sorted(parsed.records.items()):
        in_sequence = sorted(records, key=_sequence_key)
        start = _start(in_sequence[0]) if partial else GENESIS
        checkpointed = checkpoints.heads.get(chain)
        if checkpointed is not None and checkpointed.sequence <= start.sequence:
            checkpointed = None  # before the file's first record: nothing here to check it with
        report = verify_chain(
            chain,
            iter(in_sequence),
            hmac_key,
            checkpointed,
            _links(in_sequence),
            start,
        )
        if report.ok:
            report = _line_order(report, records)
        reports.append(report)
    absent = None if partial else "no record is in the file"
    reports = checkpoint_verdicts(reports, checkpoints, absent=absent)
    return ExportReport(
        chains=tuple(reports),
        records_checked=sum(report.records_checked for report in reports),
        checkpoints_checked=checkpoints.checked,
        bad_checkpoints=checkpoints.bad,
        checkpoint_chain_problems=tuple(checkpoints.chain_problems),
        anchored=tuple(checkpoints.anchored),
        unreadable_lines=tuple(parsed.unreadable),
    )


def _parse(lines: Iterable[str | bytes]) -> _ParsedExport:
    parsed = _ParsedExport(records={}, checkpoints=[], unreadable=[])
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            parsed.unreadable.append(f"line {number}: not JSON")
            continue
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "record" and isinstance(line.get("chain"), str):
            parsed.records.setdefault(line["chain"], []).append(line)
        elif kind == "checkpoint":
            parsed.checkpoints.append(line)
        else:
            parsed.unreadable.append(f"line {number}: neither an audit record nor a checkpoint")
    return parsed


def _sequence_key(record: Mapping[str, Any]) -> tuple[int, int]:
    """Sort by sequence; a non-integer sequence first, where the walk reports it."""
    sequence = record.get("sequence")
    return (1, sequence) if isinstance(sequence, int) else (0, 0)


def _start(first: Mapping[str, Any]) -> ChainHead:
    """Where a partial chain is taken to begin: just before its first record in the file."""
    sequence = first.get("sequence")
    if not isinstance(sequence, int) or sequence < 1:
        return GENESIS
    return ChainHead(sequence - 1, str(first.get("prev_hash")))


def _links(records: list[Document]) -> Callable[[], list[Document]]:
    """The chain's links (sequence, hash, prev_hash), as audit's diagnosis reads them."""
    return lambda: [
        {key: record.get(key) for key in ("sequence", "hash", "prev_hash")} for record in records
    ]


def _line_order(report: ChainReport, records_in_file_order: list[Document]) -> ChainReport:
    """An authentic chain whose lines are not in the export's (time, sequence) order."""
    latest: tuple[str, int] | None = None
    for record in records_in_file_order:
        # Authentic records (the chain verified) have a time string, all of one fixed width.
        key = (str(record["time"]), int(record["sequence"]))
        if latest is not None and key < latest:
            message = (
                f"record {key[1]} comes after record {latest[1]} in the file"
                " (lines moved; the export lists records in time order)"
            )
            return ChainReport(report.chain, report.records_checked, "reordered", key[1], message)
        latest = key
    return report

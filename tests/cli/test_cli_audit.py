"""``eventsvc audit export`` and ``eventsvc audit verify --file`` (offline, with the key).

Two sources of export files:

- the real service (``api_server``): ``audit export`` over HTTPS, for the
  records of this test's time window (the shared trail also holds other
  tests' deliberately tampered chains, so these tests verify with --partial);
- a scratch database written by our own :class:`AuditLog` and exported with
  :func:`eventsvc.audit.export.export`: a complete trail with checkpoints, where every
  kind of tampering, truncation included, is tried on the file.
"""

from __future__ import annotations

import json
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.cli_support import ServedApi, assert_one_error_line
from devstack.mongod import RunningMongod
from eventsvc.audit.export import export
from eventsvc.audit.log import AuditLog
from eventsvc.audit.record import AuditEntry
from eventsvc.audit.signing import public_key_pem
from eventsvc.cli import cli
from eventsvc.cli.audit_file import verify_export
from eventsvc.clock import rfc3339, utc_now
from support import CHECKPOINT_KEYS, CHECKPOINT_SIGNER

Run = Callable[..., Result]
Line = dict[str, Any]
SCRATCH_DATABASE = "eventsvc_cli_audit"


# --- helpers -------------------------------------------------------------------------------


def read_lines(path: Path) -> list[Line]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_lines(path: Path, lines: list[Line]) -> Path:
    path.write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return path


def records_of(lines: list[Line], chain: str) -> list[int]:
    """Indexes (in the file) of the chain's records, in file order."""
    return [
        i for i, line in enumerate(lines) if line["type"] == "record" and line["chain"] == chain
    ]


def longest_chain(lines: list[Line]) -> str:
    counts = Counter(line["chain"] for line in lines if line["type"] == "record")
    chain, count = counts.most_common(1)[0]
    assert isinstance(chain, str)
    assert count >= 4, counts
    return chain


def checkpoint_key_file(next_to: Path) -> Path:
    """The checkpoints' public key as an auditor gets it: a PEM file (not secret)."""
    path = next_to.with_name("checkpoint-public.pem")
    path.write_text(public_key_pem(CHECKPOINT_KEYS))
    return path


def verify_file(run: Run, path: Path, key_file: Path, *extra: str) -> Result:
    return run(
        "audit",
        "verify",
        "--file",
        str(path),
        "--key-file",
        str(key_file),
        "--checkpoint-key",
        str(checkpoint_key_file(key_file)),
        *extra,
    )


def assert_broken(result: Result, chain: str, kind: str, sequence: int) -> None:
    """Exit 1, one stdout line naming the chain, kind and sequence, one error line on stderr."""
    assert result.exit_code == 1, (result.output, result.exception)
    assert len(result.stdout.splitlines()) == 1, result.stdout
    assert result.stdout.startswith(f"{chain}: {kind} at sequence {sequence}: "), result.stdout
    assert result.stderr.startswith("error: the audit trail does not verify: 1 of ")
    assert "Traceback" not in result.output


def _now() -> str:
    """Now, to the millisecond (as audit times are): the start of this test's window."""
    return rfc3339(utc_now())


@pytest.fixture
def key_file(tmp_path: Path, audit_key: bytes) -> Path:
    path = tmp_path / "audit.key"
    path.write_bytes(audit_key + b"\n")
    path.chmod(0o600)
    return path


# --- the real service ----------------------------------------------------------------------


@pytest.fixture
def env(api_server: ServedApi, clean_db: None) -> dict[str, str]:
    return {
        "EVENTSVC_URL": api_server.base_url,
        "EVENTSVC_CA_FILE": str(api_server.ca_file),
        "EVENTSVC_TOKEN": api_server.token,
    }


@pytest.fixture
def served_export(run: Run, env: dict[str, str], tmp_path: Path) -> Path:
    """Ten events started through the API, then this window of the trail exported to a file."""
    since = _now()
    for number in range(10):
        assert run("start", f"audited {number}", env=env).exit_code == 0
    output = tmp_path / "export.jsonl"
    result = run("audit", "export", "--from", since, "--output", str(output), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.startswith("exported ")
    return output


def test_export_is_a_private_file_that_verifies(
    run: Run, served_export: Path, key_file: Path
) -> None:
    assert stat.S_IMODE(served_export.stat().st_mode) == 0o600
    lines = read_lines(served_export)
    assert sum(line["type"] == "record" for line in lines) >= 10
    assert {line["action"] for line in lines if line["type"] == "record"} >= {"event.create"}

    result = verify_file(run, served_export, key_file, "--partial")
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.startswith("ok: ")

    report = json.loads(verify_file(run, served_export, key_file, "--partial", "--json").stdout)
    assert report["ok"] is True
    assert report["records_checked"] >= 10


def test_export_to_stdout_is_the_same_ndjson(
    run: Run, env: dict[str, str], key_file: Path, tmp_path: Path
) -> None:
    since = _now()
    run("start", "to stdout", env=env)
    result = run("audit", "export", "--from", since, env=env)
    assert result.exit_code == 0, result.output
    path = tmp_path / "stdout.jsonl"
    path.write_bytes(result.stdout_bytes)
    assert read_lines(path)
    assert verify_file(run, path, key_file, "--partial").exit_code == 0


def test_tampered_served_export_names_chain_kind_and_sequence(
    run: Run, served_export: Path, key_file: Path, tmp_path: Path
) -> None:
    lines = read_lines(served_export)
    chain = longest_chain(lines)
    at = records_of(lines, chain)
    second, third = lines[at[1]], lines[at[2]]

    modified = [dict(line) for line in lines]
    modified[at[1]] = {**second, "target": "0" * 24}
    assert_broken(
        verify_file(run, write_lines(tmp_path / "m.jsonl", modified), key_file, "--partial"),
        chain,
        "modified",
        second["sequence"],
    )

    deleted = [line for i, line in enumerate(lines) if i != at[1]]
    assert_broken(
        verify_file(run, write_lines(tmp_path / "d.jsonl", deleted), key_file, "--partial"),
        chain,
        "deleted",
        second["sequence"],
    )

    swapped = list(lines)
    swapped[at[1]], swapped[at[2]] = third, second
    assert_broken(
        verify_file(run, write_lines(tmp_path / "s.jsonl", swapped), key_file, "--partial"),
        chain,
        "reordered",
        second["sequence"],
    )


def test_export_needs_audit_read(
    run: Run, env: dict[str, str], make_token: Callable[..., str]
) -> None:
    reader = {**env, "EVENTSVC_TOKEN": make_token("events:read")}
    line = assert_one_error_line(run("audit", "export", env=reader))
    assert line.startswith("error: 403 ")


# --- a complete trail with checkpoints (scratch database) ----------------------------------


def _entry(number: int) -> AuditEntry:
    return AuditEntry(
        actor="token:cliaudittest0001",
        action="event.create",
        target=f"{number:024x}",
        outcome="success",
        before=None,
        after={"name": f"event {number}"},
        client_address="192.0.2.7",
        request_id=f"req-{number}",
        trace_id=None,
    )


@pytest.fixture
def full_export(mongod: RunningMongod, audit_key: bytes, tmp_path: Path) -> Iterator[Path]:
    """Two chains of 6 records (two threads), a checkpoint, exported whole."""
    with mongod.admin_client() as client:
        client.drop_database(SCRATCH_DATABASE)
        database = client[SCRATCH_DATABASE]
        audit = AuditLog(database, audit_key, CHECKPOINT_SIGNER, checkpoint_every=1000)
        audit.ensure_schema()

        def write(offset: int) -> None:
            for number in range(6):
                audit.append(_entry(offset + number))

        threads = [threading.Thread(target=write, args=(offset,)) for offset in (0, 100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        audit.checkpoint()
        path = write_lines(tmp_path / "full.jsonl", list(export(database, None, None)))
        try:
            yield path
        finally:
            client.drop_database(SCRATCH_DATABASE)


def test_full_export_verifies(run: Run, full_export: Path, key_file: Path) -> None:
    result = verify_file(run, full_export, key_file)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.strip() == "ok: 2 chain(s), 12 record(s), 1 checkpoint(s) verified"


@pytest.mark.parametrize(
    ("tamper", "kind", "position"),
    [
        ("modify", "modified", 2),
        ("delete", "deleted", 2),
        ("delete-first", "deleted", 0),
        ("swap", "reordered", 2),
        ("renumber", "reordered", 2),
        ("drop-tail", "truncated", 4),
        ("insert", "inserted", 6),
    ],
)
def test_every_kind_of_tampering_is_named(
    run: Run,
    full_export: Path,
    key_file: Path,
    tmp_path: Path,
    tamper: str,
    kind: str,
    position: int,
) -> None:
    """``position`` is the index (0-based, file order) in the chain of the first broken record."""
    lines = read_lines(full_export)
    chain = longest_chain(lines)
    at = records_of(lines, chain)
    if tamper == "modify":
        lines[at[2]] = {**lines[at[2]], "outcome": "failure"}
    elif tamper in ("delete", "delete-first"):
        del lines[at[position]]
    elif tamper == "swap":
        lines[at[2]], lines[at[3]] = lines[at[3]], lines[at[2]]
    elif tamper == "renumber":  # records 3 and 4 exchange their sequence numbers
        lines[at[2]]["sequence"], lines[at[3]]["sequence"] = 4, 3
    elif tamper == "drop-tail":  # the chain's last two records; the checkpoint stays
        del lines[at[5]]
        del lines[at[4]]
    elif tamper == "insert":  # a copy of the last record, appended as the next one
        forged = {**lines[at[5]], "sequence": 7, "prev_hash": lines[at[5]]["hash"]}
        lines.insert(at[5] + 1, forged)
    result = verify_file(run, write_lines(tmp_path / f"{tamper}.jsonl", lines), key_file)
    assert_broken(result, chain, kind, position + 1)


def test_forged_checkpoint_is_named(
    run: Run, full_export: Path, key_file: Path, tmp_path: Path
) -> None:
    lines = read_lines(full_export)
    checkpoint = next(line for line in lines if line["type"] == "checkpoint")
    chain = sorted(checkpoint["heads"])[0]
    checkpoint["heads"][chain]["sequence"] = 9
    result = verify_file(run, write_lines(tmp_path / "cp.jsonl", lines), key_file, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    broken = [c for c in report["chains"] if not c["ok"]]
    assert [(c["chain"], c["kind"], c["sequence"]) for c in broken[:1]] == [
        (chain, "bad-checkpoint", 9)
    ]
    assert report["bad_checkpoints"] == 1


def test_wrong_key_breaks_every_chain(run: Run, full_export: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.key"
    wrong.write_text("x" * 43)
    wrong.chmod(0o600)
    result = verify_file(run, full_export, wrong)
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 2
    assert "2 of 2 chain(s) broken" in result.stderr


def test_unreadable_lines_are_reported(
    run: Run, full_export: Path, key_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "garbage.jsonl"
    path.write_text(full_export.read_text() + "not json\n")
    result = verify_file(run, path, key_file)
    assert result.exit_code == 1
    assert "file: line 14: not JSON" in result.stdout


def test_verify_reads_stdin(full_export: Path, key_file: Path) -> None:
    """``audit export | audit verify --file - --key-file K``."""
    result = CliRunner().invoke(
        cli,
        [
            "audit",
            "verify",
            "--file",
            "-",
            "--key-file",
            str(key_file),
            "--checkpoint-key",
            str(checkpoint_key_file(key_file)),
        ],
        input=full_export.read_bytes(),
    )
    assert result.exit_code == 0, result.output


def test_key_file_readable_by_others_is_refused(
    run: Run, full_export: Path, key_file: Path
) -> None:
    key_file.chmod(0o644)
    line = assert_one_error_line(verify_file(run, full_export, key_file), exit_code=2)
    assert "readable by others" in line


def test_without_key_file_or_vault_is_a_config_error(run: Run, full_export: Path) -> None:
    result = run("audit", "verify", "--file", str(full_export), env={"VAULT_ADDR": ""})
    line = assert_one_error_line(result, exit_code=2)
    assert "VAULT_ADDR is not set" in line
    assert "--key-file" in line


def test_verify_export_function_strict_vs_partial(full_export: Path, audit_key: bytes) -> None:
    """A file that starts mid-chain fails strict mode ("deleted" at 1) and passes --partial."""
    lines = full_export.read_text().splitlines()
    chain = longest_chain([json.loads(line) for line in lines])
    first = next(i for i, line in enumerate(lines) if f'"chain": "{chain}"' in line)
    cut = lines[:first] + lines[first + 1 :]
    strict = verify_export(cut, audit_key, CHECKPOINT_KEYS)
    assert (strict.chain(chain).kind, strict.chain(chain).broken_sequence) == ("deleted", 1)
    assert verify_export(cut, audit_key, CHECKPOINT_KEYS, partial=True).ok

"""mongod's data directory full, under write load: errors reported, nothing acknowledged unwritten.

The data directory (``member-0/db``) is a small tmpfs (``mount -t tmpfs -o
size=...``), filled up to its last few hundred KiB; later it is grown again
(``remount``). mongod's log stays next to it on the ordinary disk, so the
``No space left on device`` it reports is not itself lost to the full disk. Mounting
needs root with CAP_SYS_ADMIN: elsewhere (a CI runner as a normal user) the
test is skipped and says why. chmod to make the directory read-only would not
do: root ignores it, and a non-root mongod would fail at start, not under load.

A one-member replica set (same code as the three-member one) and one API
instance behind the gateway: with three members on three file systems a full
disk on one is just another member failure (see the primary-kill test).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.gateway import GatewayConfig
from devstack.ha import RunningHaStack, start_ha_stack
from devstack.paths import StackPaths
from faults.conftest import FAULT_API_ENV, client_urls, ready, wait_until
from faults.load import REQUEST_TIMEOUT_S, WriteLoad, check_against_database
from faults.results import record

DATABASE = "eventsvc"
SMALL = "48m"
LARGE = "256m"
LEFT_FREE_BYTES = 256 * 1024


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30, check=False)


@pytest.fixture
def small_disk_stack(tmp_path: Path) -> Iterator[tuple[RunningHaStack, Path]]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a size-limited data directory needs root (mount -t tmpfs)")
    paths = StackPaths(tmp_path / ".run")
    data_dir = paths.mongod_dir / "member-0" / "db"
    data_dir.mkdir(mode=0o700, parents=True)
    mounted = _mount("-t", "tmpfs", "-o", f"size={SMALL},mode=0700", "tmpfs", str(data_dir))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        stack = start_ha_stack(
            paths, members=1, instances=1, api_env=FAULT_API_ENV, gateway=GatewayConfig()
        )
        try:
            yield stack, data_dir
        finally:
            stack.stop()
    finally:
        _umount(data_dir)


def _fill(directory: Path, leave_free: int) -> Path:
    """A file that takes all but ``leave_free`` bytes of the file system."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    filler = directory / "filler"
    with filler.open("wb") as handle:
        handle.truncate(0)
        chunk = b"\0" * (1024 * 1024)
        remaining = max(free - leave_free, 0)
        while remaining > 0:
            handle.write(chunk[: min(len(chunk), remaining)])
            remaining -= min(len(chunk), remaining)
    return filler


def _reported_enospc(logpath: Path) -> bool:
    """mongod has logged the write that failed: the fault is in effect, not just announced."""
    return "No space left on device" in logpath.read_text(encoding="utf-8", errors="replace")


def test_data_directory_full_nothing_acknowledged_is_lost(
    small_disk_stack: tuple[RunningHaStack, Path],
) -> None:
    stack, data_dir = small_disk_stack
    member = stack.replica_set.members[0]
    ca_file = str(stack.paths.ca_file)
    with WriteLoad(client_urls(stack), ca_file, stack.tokens.cli, label="diskfull") as load:
        load.wait_for_acks(20)
        filler = _fill(data_dir, LEFT_FREE_BYTES)
        wait_until(lambda: not ready(stack.apis[0].url, ca_file), 60, "/readyz to say 503")
        wait_until(lambda: _reported_enospc(member.logpath), 60, "mongod to report ENOSPC")
        full_for_s = 3.0
        time.sleep(full_for_s)  # writers meet the full disk
        mongod_died = not member.is_running
        acked_while_full = len(load.acknowledged_after(time.monotonic() - full_for_s))
        grown = _mount("-o", f"remount,size={LARGE}", str(data_dir))
        assert grown.returncode == 0, grown.stderr
        filler.unlink()
        repaired_at = time.monotonic()
        if mongod_died:
            member.start()
        else:
            member.kill(signal.SIGKILL)  # a mongod that hit ENOSPC is not trusted further
            member.start()
        first_ack = load.wait_for_acks(1, after=repaired_at, timeout_s=90)
        load.wait_for_acks(20, after=repaired_at, timeout_s=90)
    with stack.replica_set.admin_client() as admin:
        verdict = check_against_database(load, admin, DATABASE)
    record(
        "mongodb-disk-full",
        "mongod's data directory full (tmpfs filled), then grown and mongod restarted",
        "tests/faults/test_disk_faults.py::test_data_directory_full_nothing_acknowledged_is_lost",
        load,
        verdict,
        first_ack - repaired_at,
        notes=(
            f"one member on a {SMALL} tmpfs; mongod {'exited' if mongod_died else 'stayed up'} "
            f"on the full disk; {acked_while_full} writes acknowledged while it was full; "
            "recovery measured from the repair"
        ),
    )
    assert verdict.lost == []
    assert verdict.duplicated == []
    assert load.stats.unexpected == []
    assert load.stats.non_problem_503 == 0
    assert load.stats.max_latency_s < REQUEST_TIMEOUT_S, "a request hung"

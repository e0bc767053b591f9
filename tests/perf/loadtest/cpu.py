"""CPU use of the processes under test, sampled from /proc (Linux) twice a second.

A group is a root pid and all its descendants (gunicorn's master and workers,
the lease keeper, locust's process): children are looked up at every sample,
so a worker restarted by gunicorn is still counted. The machine's own busy
share (``/proc/stat``) is kept too: other work on a shared machine shows there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # after "pid (comm)": state is field 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(root: int, tree: dict[int, list[int]]) -> Iterable[int]:
    stack = [root]
    while stack:
        pid = stack.pop()
        yield pid
        stack.extend(tree.get(pid, []))


def _cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def _machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


@dataclass
class CpuSampler:
    """Samples ``groups`` (name -> root pid) until :meth:`stop`; rows of % of one core."""

    groups: dict[str, int] = field(default_factory=dict)
    interval_s: float = 0.5
    rows: list[dict[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, name: str, pid: int) -> None:
        self.groups[name] = pid

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _snapshot(self) -> tuple[dict[str, tuple[int, float]], tuple[float, float]]:
        """(group -> (root pid, CPU seconds of its tree)), (machine busy, machine total)."""
        tree = _children()
        groups = list(self.groups.items())  # watch() may add or replace one meanwhile
        cpu = {name: (pid, _cpu_seconds(_descendants(pid, tree))) for name, pid in groups}
        return cpu, _machine_busy()

    def _run(self) -> None:
        (previous, machine_before), previous_at = self._snapshot(), time.time()
        while not self._stop.wait(self.interval_s):
            (current, machine_now), now = self._snapshot(), time.time()
            elapsed = now - previous_at
            row = {"t": now}
            for name, (pid, seconds) in current.items():
                before = previous.get(name)
                if before is not None and before[0] == pid:  # not across a new process
                    row[name] = max(0.0, (seconds - before[1]) / elapsed * 100)
            total = machine_now[1] - machine_before[1]
            if total > 0:
                busy = machine_now[0] - machine_before[0]
                row["machine"] = busy / total * 100 * (os.cpu_count() or 1)
            self.rows.append(row)
            previous, machine_before, previous_at = current, machine_now, now

    def mean(self, name: str, windows: list[tuple[float, float]]) -> float | None:
        """Mean % of one core of ``name`` within wall-clock windows (None: no sample)."""
        values = [
            row[name]
            for row in self.rows
            if name in row and any(start <= row["t"] <= end for start, end in windows)
        ]
        return sum(values) / len(values) if values else None

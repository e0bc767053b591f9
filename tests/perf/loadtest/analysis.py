"""From raw samples to figures: per stage throughput, latency percentiles, errors, CPU; the knee.

Every figure comes from the samples both sides wrote (one row per request or
insert, with its wall-clock start), never from locust's rounded statistics.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perf.loadtest.cpu import CpuSampler
from perf.loadtest.plan import Stage

SETUP = "setup"


@dataclass(frozen=True)
class Sample:
    start: float
    name: str
    ms: float
    status: int
    ok: bool
    events: int


@dataclass
class StageStats:
    """One stage's measured windows (after each one's warm-up; several when it ran in rounds)."""

    name: str
    phase: str
    users: int
    seconds: float
    requests: int
    events: int
    errors: int
    rate: float  # requests/s
    event_rate: float  # events written/s
    p50: float
    p95: float
    p99: float
    max: float
    offered_rate: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    windows: list[tuple[float, float]] = field(default_factory=list)


def read_samples(path: Path) -> list[Sample]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Sample(
                float(r["start"]),
                r["name"],
                float(r["ms"]),
                int(r["status"]),
                r["ok"] == "1",
                int(r["events"]),
            )
            for r in csv.DictReader(handle)
        ]


def read_stage_starts(samples_file: Path) -> dict[int, float]:
    path = samples_file.with_suffix(".stages.json")
    if not path.exists():
        return {}
    return {int(row["index"]): float(row["started"]) for row in json.loads(path.read_text())}


def percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def stage_stats(
    stage: Stage,
    samples: list[Sample],
    windows: list[tuple[float, float]],
    cpu: CpuSampler | None,
) -> StageStats:
    """Figures of the requests that started in one of the [start, end) windows."""
    window = [s for s in samples if s.name != SETUP and any(a <= s.start < b for a, b in windows)]
    seconds = max(sum(b - a for a, b in windows), 1e-9)
    latencies = sorted(s.ms for s in window)
    errors = sum(not s.ok for s in window)
    stats = StageStats(
        name=stage.name,
        phase=stage.phase,
        users=stage.users,
        seconds=round(seconds, 2),
        requests=len(window),
        events=sum(s.events for s in window),
        errors=errors,
        rate=len(window) / seconds,
        event_rate=sum(s.events for s in window) / seconds,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        max=latencies[-1] if latencies else math.nan,
        offered_rate=stage.offered_rate,
        statuses={str(k): v for k, v in sorted(Counter(s.status for s in window).items())},
        by_name=dict(Counter(s.name for s in window)),
        windows=windows,
    )
    if cpu is not None:
        for group in [*cpu.groups, "machine"]:
            value = cpu.mean(group, windows)
            if value is not None:
                stats.cpu[group] = round(value, 1)
    return stats


def stages_of_run(
    stages: list[Stage],
    samples: list[Sample],
    starts: dict[int, float],
    warmup_s: float,
    cpu: CpuSampler | None,
) -> list[StageStats]:
    """Each stage's window: from its start (plus warm-up) to the next stage's start.

    Stages of the same name (rounds) are one stage measured over all their windows.
    """
    windows: dict[str, list[tuple[float, float]]] = {}
    first: dict[str, Stage] = {}
    for index, stage in enumerate(stages):
        if index not in starts:
            continue
        start = starts[index]
        end = starts.get(index + 1, start + stage.seconds)
        measured_from = start + min(warmup_s, stage.seconds / 2) if stage.seconds > 1 else start
        windows.setdefault(stage.name, []).append((measured_from, end))
        first.setdefault(stage.name, stage)
    return [stage_stats(first[name], samples, spans, cpu) for name, spans in windows.items()]


def per_second(samples: list[Sample], origin: float) -> list[dict[str, float]]:
    """Time series for the plots: per second since ``origin``, requests, p50, p99, errors."""
    buckets: dict[int, list[Sample]] = {}
    for sample in samples:
        if sample.name != SETUP:
            buckets.setdefault(int(sample.start - origin), []).append(sample)
    rows = []
    for second in sorted(buckets):
        bucket = buckets[second]
        latencies = sorted(s.ms for s in bucket)
        rows.append(
            {
                "t": second,
                "rate": len(bucket),
                "events": sum(s.events for s in bucket),
                "p50": percentile(latencies, 50),
                "p99": percentile(latencies, 99),
                "errors": sum(not s.ok for s in bucket),
            }
        )
    return rows


@dataclass(frozen=True)
class Knee:
    """Where adding users stops paying: the first step at >= 90 % of the best throughput.

    Beyond it more users add queueing (latency), not throughput. Taken over the
    whole curve rather than step to step, so one noisy step does not move it.
    """

    users: int
    rate: float
    p99: float
    max_rate: float
    reason: str


KNEE_SHARE = 0.9


def find_knee(steps: list[Any]) -> Knee | None:
    """``steps``: the knee stages in order (StageStats, or their JSON with attribute access)."""
    good = [s for s in steps if s.requests]
    if not good:
        return None
    best = max(good, key=lambda s: s.rate)
    knee = next(s for s in good if s.rate >= KNEE_SHARE * best.rate)
    beyond = [s for s in good if s.users > knee.users]
    reason = f"the first step with {KNEE_SHARE:.0%} of the best step's throughput"
    if beyond:
        last = beyond[-1]
        reason += (
            f"; {last.users} users got {last.rate:,.1f} req/s at p99 {last.p99:,.1f} ms, "
            f"{last.p99 / knee.p99:.1f}x the knee's p99"
        )
    return Knee(knee.users, knee.rate, knee.p99, best.rate, reason)


def to_json(value: Any) -> Any:
    """Dataclasses and nan made JSON-safe (nan -> None)."""
    if hasattr(value, "__dataclass_fields__"):
        return to_json(asdict(value))
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value

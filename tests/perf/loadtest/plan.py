"""What one run measures, and for how long: the phases and their stages per mode.

A stage is (name, users, seconds, scenario); locust runs a list of stages
one after the other in one process (``StagedShape`` in the locustfile). The
first ``warmup_s`` of each stage are not measured (connections, TLS handshakes,
users still spawning).

Phases, in order:

1. ``compare`` (closed loop, ``users`` each, no think time): /healthz over HTTPS,
   authenticated list, secure single create, the bare Flask insert, the batch
   endpoint when it exists, in ``rounds`` alternating rounds; the raw pymongo
   baseline (not locust) at the same concurrency runs before and after them.
2. ``knee`` (closed loop, steady mix): the user count doubles each step; the
   knee is the first step at 90 % of the best step's throughput (more users add
   latency, not throughput), the best step is the maximum sustained rate.
3. ``ladder`` (paced steady mix): fixed fractions of that maximum rate; p99 at
   each, the objective (p99 < 25 ms) judged at half of the maximum.
4. ``peak`` (paced steady mix): a base rate, a ramp to 5x it, one minute there,
   back down.
5. ``read-heavy`` (closed loop): list 50 %, read one 40 %, create 10 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stage:
    name: str
    phase: str
    users: int
    seconds: float
    scenario: str  # what the users do (the locustfile's SCENARIOS)
    offered_rate: float | None = None  # paced stages: requests/s asked for


@dataclass(frozen=True)
class Mode:
    name: str
    users: int  # the comparisons' concurrency (and raw pymongo's threads)
    compare_s: float
    knee_users: tuple[int, ...]
    knee_s: float
    ladder: tuple[float, ...]  # fractions of the maximum sustained rate
    ladder_s: float
    paced_users: int  # users at 100 % of the maximum rate (pacing per user follows)
    peak_base: float  # fraction of the maximum rate; the peak is 5x this
    peak_hold_s: float  # 0: no peak phase
    peak_ramp_s: int
    peak_side_s: float
    read_heavy_s: float
    warmup_s: float
    rounds: int = 2  # the comparisons alternate, so background load hits each alike
    batch_size: int = 50


MODES = {
    "full": Mode(
        name="full",
        users=8,
        compare_s=24,
        knee_users=(1, 2, 4, 8, 16, 32),
        knee_s=12,
        ladder=(0.1, 0.25, 0.5, 0.75, 1.0),
        ladder_s=15,
        paced_users=32,
        peak_base=0.2,
        peak_hold_s=60,
        peak_ramp_s=10,
        peak_side_s=15,
        read_heavy_s=20,
        warmup_s=2.0,
    ),
    "quick": Mode(
        name="quick",
        users=8,
        compare_s=8,
        knee_users=(1, 4, 16),
        knee_s=6,
        ladder=(0.25, 0.5, 1.0),
        ladder_s=6,
        paced_users=16,
        peak_base=0.2,
        peak_hold_s=15,
        peak_ramp_s=4,
        peak_side_s=5,
        read_heavy_s=6,
        warmup_s=1.0,
    ),
    "smoke": Mode(
        name="smoke",
        users=2,
        compare_s=2,
        knee_users=(2,),
        knee_s=2,
        ladder=(0.5,),
        ladder_s=2,
        paced_users=4,
        peak_base=0.2,
        peak_hold_s=0,
        peak_ramp_s=0,
        peak_side_s=0,
        read_heavy_s=2,
        warmup_s=0.5,
        rounds=1,
        batch_size=10,
    ),
}
PEAK_FACTOR = 5


def compare_stages(mode: Mode, batch_available: bool) -> list[Stage]:
    names = ["healthz", "list", "create", "bare-insert"] + (["batch"] if batch_available else [])
    seconds = mode.compare_s / mode.rounds
    return [
        Stage(name, "compare", mode.users, seconds, name)
        for _ in range(mode.rounds)
        for name in names
    ]


def knee_stages(mode: Mode) -> list[Stage]:
    return [Stage(f"mix-{users}u", "knee", users, mode.knee_s, "mix") for users in mode.knee_users]


def read_heavy_stages(mode: Mode) -> list[Stage]:
    return [Stage("read-heavy", "read-heavy", mode.users, mode.read_heavy_s, "read-heavy")]


def per_user_rate(mode: Mode, max_rate: float) -> float:
    return max(max_rate, 1.0) / mode.paced_users


def paced_stages(mode: Mode, max_rate: float) -> list[Stage]:
    """The ladder, then the peak: users paced at ``per_user_rate`` requests/s each."""
    rate = per_user_rate(mode, max_rate)

    def paced(name: str, phase: str, users: int, seconds: float) -> Stage:
        users = max(1, users)
        return Stage(name, phase, users, seconds, "mix", users * rate)

    stages = [
        paced(f"ladder-{round(f * 100)}%", "ladder", round(f * mode.paced_users), mode.ladder_s)
        for f in mode.ladder
    ]
    if mode.peak_hold_s:
        base = max(1, round(mode.peak_base * mode.paced_users))
        top = base * PEAK_FACTOR
        stages.append(paced("peak-base", "peak", base, mode.peak_side_s))
        for second in range(1, mode.peak_ramp_s + 1):
            users = base + round((top - base) * second / mode.peak_ramp_s)
            stages.append(paced(f"peak-ramp-{second}", "peak", users, 1))
        stages.append(paced("peak-5x", "peak", top, mode.peak_hold_s))
        stages.append(paced("peak-after", "peak", base, mode.peak_side_s))
    return stages


def locust_plan(stages: list[Stage], mode: Mode, rate_per_user: float = 1.0) -> dict[str, Any]:
    """The JSON the locustfile reads: stages with their end times, pacing, batch size."""
    ends_at = 0.0
    rows = []
    for stage in stages:
        ends_at += stage.seconds
        rows.append(
            {
                "name": stage.name,
                "users": stage.users,
                "scenario": stage.scenario,
                "paced": stage.offered_rate is not None,
                "ends_at": ends_at,
            }
        )
    return {
        "stages": rows,
        "spawn_rate": 100,
        "paced_rate_per_user": rate_per_user,
        "batch_size": mode.batch_size,
        "setup_events": 2,
    }

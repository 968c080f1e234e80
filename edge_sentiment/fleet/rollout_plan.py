"""A staged rollout's decisions: advance a phase, abort, or finish. Pure: the plan, the
progress so far, what the devices reported and the clock in; a decision out.

A phase is a share of the devices (by ``protocol.rollout.bucket``, the same on devices and
here). The controller advances when the phase has baked ``bake_s`` seconds and at least
``healthy_share`` of the known devices in the share report the release ``healthy`` (its health
window passed, ``agent/health.py``). It aborts when, among the devices that tried the release
(at least ``min_devices``, or every device in the share when fewer), the share that failed
(``rolled_back``, for any reason, or a final ``rejected``) is over ``max_failure_share``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UpdateReason
from ..protocol.rollout import bucket

PHASE_STATES = ("active", "paused", "aborted", "done")


@dataclass(frozen=True)
class Plan:
    channel: str
    version: str
    bundle_sha256: str
    salt: str
    phases: tuple[float, ...] = (0.01, 0.1, 0.5, 1.0)
    bake_s: float = 600.0
    healthy_share: float = 0.9
    max_failure_share: float = 0.2
    min_devices: int = 3

    def __post_init__(self) -> None:
        if not self.phases or any(not 0 < p <= 1 for p in self.phases) \
                or list(self.phases) != sorted(self.phases):
            raise ValueError("phases must rise within (0, 1], e.g. 0.01,0.1,1")
        if self.bake_s < 0 or not 0 < self.healthy_share <= 1 \
                or not 0 <= self.max_failure_share < 1 or self.min_devices < 1:
            raise ValueError("bake >= 0, healthy share in (0, 1], failure share in [0, 1), "
                             "min devices >= 1")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(**{**data, "phases": tuple(data["phases"])})


@dataclass
class Progress:
    phase: int = 0
    state: str = "active"
    phase_started: float = 0.0
    sequence: int = 0  # the last directive published
    published_at: float = 0.0  # when: a directive is signed again before it expires
    reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        return cls(**data)


@dataclass(frozen=True)
class Decision:
    kind: str  # "advance", "abort" or "done"
    reason: str
    phase: int


@dataclass(frozen=True)
class Tally:
    in_share: int
    healthy: int
    failed: int
    tried: int


def failed(event: str, reason: str) -> bool:
    """Whether a device's update event says the release failed there."""
    if event == "rolled_back":
        return reason != UpdateReason.REVOKED.value  # stepping back on our own abort
    if event == "rejected":
        try:
            return not UpdateReason(reason).transient
        except ValueError:
            return True
    return False


def tally(plan: Plan, phase: int, devices: set[str],
          outcomes: dict[str, tuple[str, str]]) -> Tally:
    """``outcomes``: device -> (last event, reason) for this plan's version."""
    share = plan.phases[phase]
    tried = {d for d, (event, reason) in outcomes.items()
             if event in ("active", "healthy") or failed(event, reason)}
    mine = {d for d in devices if bucket(d, plan.salt) < share} | tried
    healthy = sum(1 for d in tried if outcomes[d][0] == "healthy")
    bad = sum(1 for d in tried if failed(*outcomes[d]))
    return Tally(len(mine), healthy, bad, len(tried))


def decide(plan: Plan, progress: Progress, devices: set[str],
           outcomes: dict[str, tuple[str, str]], now: float) -> Decision | None:
    if progress.state != "active":
        return None
    t = tally(plan, progress.phase, devices, outcomes)
    enough = max(1, min(plan.min_devices, t.in_share))
    if t.tried >= enough and t.failed / max(1, t.tried) > plan.max_failure_share:
        return Decision("abort", f"{t.failed} of {t.tried} devices that tried {plan.version} "
                        f"failed (over {plan.max_failure_share:.0%})", progress.phase)
    if now - progress.phase_started < plan.bake_s:
        return None
    if t.healthy < math.ceil(plan.healthy_share * t.in_share):
        return None
    last = progress.phase == len(plan.phases) - 1
    return Decision("done" if last else "advance",
                    f"{t.healthy} of {t.in_share} devices healthy after "
                    f"{now - progress.phase_started:.0f} s", progress.phase + (0 if last else 1))

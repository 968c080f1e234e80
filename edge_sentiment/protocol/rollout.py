"""Rollout directives: a signed, percentage-gated decision about an already-signed release.

The trust document may name a ``rollout`` role: keys of its own and a threshold (an online
key, kept apart from the offline release keys, as Uptane and TUF separate targets from
timestamp). A directive signed by that role says, for one channel, which signed release goes
to which share of devices, whether the rollout is active, paused or aborted, and which
versions are revoked. Each device takes its own bucket from its id and the directive's salt
and installs only when its bucket is under the share.

What a holder of the rollout key cannot do: install anything the release keys did not sign
(a directive only selects among signed releases: version and bundle sha256 must both match
a manifest the release keys signed), or send a device below the last version it ran that is
not revoked (anti-rollback still holds for releases; a revocation only returns a device to
its previous slot when that slot is not revoked itself). A replayed older directive is refused
by its sequence number. Threat model: docs/rollouts.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..errors import ManifestError, UpdateError, UpdateReason
from ..manifest import parse_semver
from .release import format_time, parse_time
from .topics import TOPIC_PART

ROLLOUT_FORMAT = "edge-sentiment-rollout"
R = UpdateReason
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RolloutState(StrEnum):
    ACTIVE = "active"  # devices in the share install
    PAUSED = "paused"  # nobody new installs; installed devices stay
    ABORTED = "aborted"  # nobody installs, and the release is revoked


@dataclass(frozen=True)
class Directive:
    channel: str
    sequence: int  # strictly increasing per channel: a lower or equal one is a replay
    version: str  # the release it rolls out, as the release keys signed it
    bundle_sha256: str
    share: float  # 0..1: the share of devices (by bucket) that install
    salt: str  # a new salt reshuffles which devices come first
    state: RolloutState
    revoked: tuple[str, ...]  # versions no device may run
    expires: str

    def __post_init__(self) -> None:
        try:
            parse_semver(self.version)
            for v in self.revoked:
                parse_semver(v)
        except ManifestError as exc:
            raise ValueError(str(exc)) from exc
        parse_time(self.expires)
        if not TOPIC_PART.match(self.channel):
            raise ValueError(f"bad channel name {self.channel!r}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share {self.share} not in 0..1")
        if self.sequence < 1 or not self.salt or not _SHA256.match(self.bundle_sha256):
            raise ValueError("sequence >= 1, a salt and a sha256 are required")
        if self.state is RolloutState.ABORTED and self.version not in self.revoked:
            raise ValueError("an aborted rollout must revoke its version")

    @classmethod
    def from_signed(cls, s: dict[str, Any]) -> Directive:
        try:
            if s["format"] != ROLLOUT_FORMAT or int(s["format_version"]) != 1:
                raise ValueError("unknown rollout format")
            share = s["share"]
            if isinstance(share, bool) or not isinstance(share, (int, float)):
                raise ValueError("share must be a number")
            return cls(channel=str(s["channel"]), sequence=int(s["sequence"]),
                       version=str(s["release"]["version"]),
                       bundle_sha256=str(s["release"]["bundle_sha256"]), share=float(share),
                       salt=str(s["salt"]), state=RolloutState(s["state"]),
                       revoked=tuple(str(v) for v in s["revoked"]), expires=str(s["expires"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UpdateError(R.MALFORMED, f"rollout directive: {exc}") from exc

    def to_signed(self) -> dict[str, Any]:
        return {"format": ROLLOUT_FORMAT, "format_version": 1, "channel": self.channel,
                "sequence": self.sequence,
                "release": {"version": self.version, "bundle_sha256": self.bundle_sha256},
                "share": self.share, "salt": self.salt, "state": self.state.value,
                "revoked": list(self.revoked), "expires": self.expires}


def bucket(device_id: str, salt: str) -> float:
    """The device's place in [0, 1) for this salt: the same on every device and controller."""
    digest = hashlib.sha256(f"{salt}/{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def check_directive(d: Directive, *, channel: str, last_sequence: int,
                    now: datetime | None = None) -> None:
    """The checks on a verified directive; raises UpdateError with a reason."""
    if d.channel != channel:
        raise UpdateError(R.WRONG_CHANNEL, f"directive for {d.channel}, device on {channel}")
    if d.sequence <= last_sequence:
        raise UpdateError(R.ROLLOUT_REPLAY, f"directive sequence {d.sequence} is not above the "
                          f"last accepted {last_sequence}")
    if parse_time(d.expires) <= (now or datetime.now(UTC)):
        raise UpdateError(R.EXPIRED, f"directive {d.sequence} expired at {d.expires}")


def gate(d: Directive | None, *, version: str, bundle_sha256: str, device_id: str) -> None:
    """May this device install the signed release ``version``? Raises UpdateError with a
    transient reason when not now (a later directive may allow it)."""
    if d is None:
        raise UpdateError(R.NO_DIRECTIVE, "the trust names a rollout role and no directive "
                          "has come: releases wait for one")
    if version in d.revoked:
        raise UpdateError(R.REVOKED, f"release {version} is revoked (directive {d.sequence})")
    if (d.version, d.bundle_sha256) != (version, bundle_sha256):
        raise UpdateError(R.NOT_IN_ROLLOUT, f"directive {d.sequence} rolls out {d.version}, "
                          f"not this {version}")
    if d.state is not RolloutState.ACTIVE:
        raise UpdateError(R.NOT_IN_ROLLOUT, f"rollout of {version} is {d.state.value}")
    place = bucket(device_id, d.salt)
    if place >= d.share:
        raise UpdateError(R.NOT_IN_ROLLOUT, f"bucket {place:.4f} is not under the share "
                          f"{d.share:.4f}")


def make_directive(*, channel: str, sequence: int, version: str, bundle_sha256: str,
                   share: float, salt: str, state: RolloutState = RolloutState.ACTIVE,
                   revoked: tuple[str, ...] = (), expires: datetime) -> Directive:
    try:
        return Directive(channel, sequence, version, bundle_sha256, share, salt, state,
                         tuple(revoked), format_time(expires))
    except ValueError as exc:
        raise UpdateError(R.MALFORMED, f"rollout directive: {exc}") from exc

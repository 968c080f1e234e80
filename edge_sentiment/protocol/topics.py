"""Every MQTT topic of the protocol, built and parsed in one place.

    <prefix>/devices/<device>/{status,metrics,update,alerts}   device -> fleet
    <prefix>/samples/<device>                                   opt-in captured samples
    <prefix>/updates/<channel>/manifest                        a signed release (retained)
    <prefix>/updates/<channel>/releases/<version>/chunks/<i>   its bundle, chunk by chunk
    <prefix>/updates/<channel>/rollout                         a signed rollout directive
    <prefix>/updates/trust                                     a signed trust rotation
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_PREFIX = "edge-sentiment"
TOPIC_PART = re.compile(r"^[A-Za-z0-9_.-]+$")  # a prefix part, channel or version
DEVICE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class DeviceTopic(StrEnum):
    """What a device publishes, one topic each."""

    STATUS = "status"
    METRICS = "metrics"
    UPDATE = "update"
    ALERTS = "alerts"


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or not all(TOPIC_PART.match(p) for p in self.prefix.split("/")):
            raise ValueError(f"bad topic prefix {self.prefix!r}")

    def device(self, device_id: str, kind: DeviceTopic) -> str:
        return f"{self.prefix}/devices/{device_id}/{kind.value}"

    def all_devices(self, kind: DeviceTopic) -> str:
        return f"{self.prefix}/devices/+/{kind.value}"

    def samples(self, device_id: str) -> str:
        """A device's captured samples: outside ``devices/`` so an ACL can grant it apart."""
        return f"{self.prefix}/samples/{device_id}"

    def all_samples(self) -> str:
        return f"{self.prefix}/samples/+"

    def manifest(self, channel: str) -> str:
        return f"{self.prefix}/updates/{channel}/manifest"

    def trust(self) -> str:
        return f"{self.prefix}/updates/trust"

    def rollout(self, channel: str) -> str:
        """The channel's signed rollout directive (retained)."""
        return f"{self.prefix}/updates/{channel}/rollout"

    def chunks(self, channel: str, version: str) -> str:
        """The folder of a release's chunks; ``chunks(...) + "/+"`` subscribes to all."""
        return f"{self.prefix}/updates/{channel}/releases/{version}/chunks"

    def chunk(self, channel: str, version: str, index: int) -> str:
        return f"{self.chunks(channel, version)}/{index}"

    def chunk_index(self, topic: str, channel: str, version: str) -> str | None:
        """The raw index part of one of this release's chunk topics; None for any other topic."""
        base = self.chunks(channel, version) + "/"
        return topic[len(base):] if topic.startswith(base) else None


def device_of(topic: str) -> tuple[str, str] | None:
    """(device, kind) from ``<prefix>/devices/<device>/<kind>``; None for anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[-3] != "devices" or not DEVICE_ID.match(parts[-2]):
        return None
    return parts[-2], parts[-1]

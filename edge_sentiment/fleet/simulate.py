"""``fleet simulate``: many devices from one process, speaking the real protocol, to drive the
controller and the exporter at fleet scale.

Each simulated device publishes a retained status and, every ``--metrics-interval``, a
metrics message; it follows the channel's rollout directive (its bucket from its id and the
salt, exactly as an agent does) and, when the directive sends it the release, reports
``downloading``, ``active`` and, after ``--health-delay``, ``healthy`` or (a ``--fail-share``
of devices) ``rolled_back`` with reason ``unhealthy``. A revoked version steps back
(``rolled_back``, reason ``revoked``). It does not verify signatures or move bytes: it is load
for the fleet side, not a device.
"""

from __future__ import annotations

import heapq
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import UpdateError
from ..protocol import DeviceTopic, Topics, connect
from ..protocol.messages import SCHEMAS
from ..protocol.rollout import Directive, RolloutState, bucket


@dataclass
class SimDevice:
    device: str
    version: str
    failing: bool
    seq: int = 0
    busy: bool = False
    previous: str = ""


@dataclass
class Simulator:
    broker: Any
    prefix: str
    count: int
    version: str = "0.0.1"
    channel: str = "stable"
    fail_share: float = 0.0
    health_delay: float = 1.0
    install_delay: float = 0.5
    id_prefix: str = "sim-"
    seed: int = 0
    devices: dict[str, SimDevice] = field(default_factory=dict)
    _queue: list[tuple[float, int, str, str, str]] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.topics = Topics(self.prefix)
        for i in range(self.count):
            name = f"{self.id_prefix}{i}"
            self.devices[name] = SimDevice(name, self.version, rng.random() < self.fail_share)
        self.rng = rng
        self.client: Any = None
        self.published = 0

    def start(self) -> None:
        self.client = connect(self.broker)
        self.client.on_message = lambda c, u, msg: self._directive(msg.payload)
        for dev in self.devices.values():
            self._send(dev, DeviceTopic.STATUS, {"state": "online", "model_version": dev.version,
                                                 "backend": "sim", "profile": "sim",
                                                 "channel": self.channel}, retain=True)
        self.client.subscribe(self.topics.rollout(self.channel), qos=1)

    def _send(self, dev: SimDevice, kind: DeviceTopic, body: dict[str, Any],
              retain: bool = False) -> None:
        dev.seq += 1
        doc = {"schema": SCHEMAS[kind], "device": dev.device, "seq": dev.seq, "ts": time.time(),
               **body}
        self.client.publish(self.topics.device(dev.device, kind), json.dumps(doc).encode(),
                            qos=0 if kind == DeviceTopic.METRICS else 1, retain=retain)
        self.published += 1

    def _later(self, delay: float, device: str, event: str, version: str) -> None:
        self._n += 1
        heapq.heappush(self._queue, (time.time() + delay, self._n, device, event, version))

    def _directive(self, payload: bytes) -> None:
        try:
            d = Directive.from_signed(json.loads(payload)["signed"])
        except (ValueError, KeyError, TypeError, UpdateError):  # not a directive it can read
            return
        for dev in self.devices.values():
            if dev.version in d.revoked and dev.previous:
                self._later(0.1 * self.rng.random(), dev.device, "revoked", dev.version)
            elif (d.state is RolloutState.ACTIVE and not dev.busy and dev.version != d.version
                  and d.version not in d.revoked and bucket(dev.device, d.salt) < d.share):
                dev.busy = True
                self._later(self.install_delay * self.rng.random(), dev.device, "active",
                            d.version)

    def step(self) -> None:
        """Send every event that is due."""
        now = time.time()
        while self._queue and self._queue[0][0] <= now:
            _, _, name, event, version = heapq.heappop(self._queue)
            dev = self.devices[name]
            if event == "active":
                dev.previous, dev.version = dev.version, version
                self._update(dev, "downloading", version)
                self._update(dev, "active", version)
                self._later(self.health_delay, name, "judged", version)
            elif event == "judged" and dev.version == version:
                if dev.failing:
                    dev.version = dev.previous
                    self._update(dev, "rolled_back", version, "unhealthy", dev.version)
                else:
                    self._update(dev, "healthy", version)
            elif event == "revoked" and dev.version == version:
                dev.version = dev.previous
                self._update(dev, "rolled_back", version, "revoked", dev.version)

    def _update(self, dev: SimDevice, event: str, version: str, reason: str | None = None,
                current: str | None = None) -> None:
        body: dict[str, Any] = {"event": event, "version": version, "model_version": dev.version}
        if reason:
            body["reason"] = reason
        if current:
            body["current"] = current
        self._send(dev, DeviceTopic.UPDATE, body)

    def metrics(self) -> None:
        for dev in self.devices.values():
            n = self.rng.randint(0, 50)
            self._send(dev, DeviceTopic.METRICS, {
                "count": n, "errors": 0, "labels": {"negative": n // 3, "neutral": n // 3,
                                                    "positive": n - 2 * (n // 3)},
                "latency_ms": {"p50": 0.6, "p95": 1.1, "p99": 1.5}, "throughput_per_s": n / 60,
                "drift": {"class_psi": 0.01}, "model_version": dev.version}, retain=True)

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

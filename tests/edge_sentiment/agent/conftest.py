"""A real Mosquitto per test (free port, generated config, stopped after), plus helpers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.slots import SlotStore
from tests.helpers import free_port

PREFIX = "edge-sentiment"


@dataclass
class Broker:
    port: int
    conf: Path
    proc: subprocess.Popen[bytes] | None = None
    admin: dict[str, Any] = field(default_factory=dict)  # username/password/tls for watchers

    @property
    def url(self) -> str:
        return f"mqtt{'s' if self.admin.get('tls_ca') else ''}://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.conf.with_suffix(".log"), "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start: "
                           + self.conf.with_suffix(".log").read_text(errors="replace")[-500:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _require_mosquitto() -> None:
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed; install it with: apt-get install -y mosquitto "
                    "(the MQTT tests start their own broker)")


def make_broker(tmp: Path, extra: str = "", listener: str = "") -> Broker:
    _require_mosquitto()
    port = free_port()
    conf = tmp / f"mosquitto-{port}.conf"
    # as root, mosquitto drops to the 'mosquitto' user, which cannot read pytest's tmp dirs
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"{user}listener {port} 127.0.0.1\n{listener}persistence false\n"
                    f"{extra or 'allow_anonymous true'}\n")
    return Broker(port, conf)


class Watcher:
    """Subscribes to everything under the prefix and keeps what arrives."""

    def __init__(self, broker: Broker, topic: str = f"{PREFIX}/#", session: str = "") -> None:
        """``session``: a client id with a persistent session (QoS 1 messages sent while the
        watcher is away are kept by a broker with persistence, and delivered on reconnect)."""
        self.messages: list[tuple[str, Any]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=session or f"watch-{uuid.uuid4().hex[:6]}",
                                  clean_session=not session)
        self.client.reconnect_delay_set(0.2, 1.0)
        if broker.admin.get("username"):
            self.client.username_pw_set(broker.admin["username"], broker.admin["password"])
        if broker.admin.get("tls_ca"):
            self.client.tls_set(ca_certs=str(broker.admin["tls_ca"]))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = msg.payload
        with self.cond:
            self.messages.append((msg.topic, body))
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[str, Any], bool], timeout: float = 20.0) -> Any:
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for topic, body in self.messages:
                    if pred(topic, body):
                        return body
                left = deadline - time.time()
                if left <= 0:
                    seen = [(t, {k: b.get(k) for k in ("event", "reason", "state")}
                             if isinstance(b, dict) else "") for t, b in
                            self.messages if not t.endswith(tuple("0123456789"))][-15:]
                    raise AssertionError(f"timed out; last messages: {seen}")
                self.cond.wait(left)

    def events(self, device: str) -> list[dict[str, Any]]:
        with self.cond:
            return [b for t, b in self.messages if t == f"{PREFIX}/devices/{device}/update"]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def update_event(device: str, event: str) -> Callable[[str, Any], bool]:
    return lambda t, b: t == f"{PREFIX}/devices/{device}/update" and isinstance(b, dict) \
        and b.get("event") == event


TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


@pytest.fixture
def run_agent(broker: Broker, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def start(device: str, channel: str, trust: Path, **extra: Any) -> Agent:
        state = tmp_path / f"state-{device}"
        SlotStore(state).ensure(TINY)
        clf = SentimentClassifier.load(state / "current", runtime="onnx")
        cfg = AgentConfig(broker=broker.url, device_id=device, state_dir=state, trust=trust,
                          channel=channel, metrics_interval_s=extra.pop("metrics_interval_s", 30),
                          runtime="onnx", **extra)
        agent = Agent(clf, cfg)
        agent.start()
        agents.append(agent)
        return agent
    yield start
    for a in agents:
        a.stop(timeout=2)

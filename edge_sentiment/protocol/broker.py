"""How to reach a broker, shared by the agent, the fleet commands and the exporter.

``make_client`` needs paho-mqtt (the ``agent`` extra), imported only when called.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigError, missing_extra

INFLIGHT = 20  # unacknowledged QoS 1 messages one client keeps in flight


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an mqtt:// or mqtts:// URL; the port defaults to 1883 / 8883."""
    parsed = urlparse(url)
    tls = parsed.scheme == "mqtts"
    return parsed.hostname or "", parsed.port or (8883 if tls else 1883), tls


def broker_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable broker URL, or None. A URL with a user or password in it is
    refused: URLs are logged and shown in process lists, a password file is not. The reason
    never repeats the URL, so a password in it is not echoed back."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        return "must look like mqtt://host:1883 or mqtts://host:8883"
    if parsed.username is not None or parsed.password is not None:
        return "credentials in the broker URL are refused: pass a username and a password file"
    return None


@dataclass(frozen=True)
class BrokerSettings:
    """A broker URL with its TLS files and credentials; a malformed URL or one that carries
    credentials is refused with ConfigError, whoever builds the settings."""

    url: str
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        problem = broker_url_problem(self.url)
        if problem:
            raise ConfigError(f"broker URL: {problem}")

    @property
    def host(self) -> str:
        return broker_address(self.url)[0]

    @property
    def port(self) -> int:
        return broker_address(self.url)[1]


def mqtt_module() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise missing_extra("paho-mqtt", "agent") from exc
    return mqtt


def make_client(b: BrokerSettings, client_id: str, will: tuple[str, bytes] | None = None) -> Any:
    """A configured, unconnected paho client (clean session, no automatic reconnect)."""
    mqtt = mqtt_module()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=True, reconnect_on_failure=False)
    if b.username:
        client.username_pw_set(b.username, b.password)
    if broker_address(b.url)[2]:
        client.tls_set(ca_certs=str(b.tls_ca) if b.tls_ca else None,
                       certfile=str(b.tls_cert) if b.tls_cert else None,
                       keyfile=str(b.tls_key) if b.tls_key else None,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.max_inflight_messages_set(INFLIGHT)
    return client


def connect(broker: BrokerSettings, timeout: float = 10.0) -> Any:
    """A connected client with its network loop running (the fleet side's short sessions);
    a broker that cannot be reached or refuses is a ConfigError naming its URL."""
    client = make_client(broker, f"fleet-{uuid.uuid4().hex[:8]}")
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set() if not rc.is_failure else None
    try:
        client.connect(broker.host, broker.port, keepalive=30)
    except OSError as exc:
        raise ConfigError(f"cannot reach broker {broker.url}: {exc}") from exc
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise ConfigError(f"broker {broker.url} did not accept the connection")
    return client


@contextmanager
def session(broker: BrokerSettings, timeout: float = 10.0) -> Iterator[Any]:
    """``connect``, then disconnect and stop the network loop however the block ends."""
    client = connect(broker, timeout)
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()

"""paho-mqtt 2.x client: TLS, auth, last will, reconnect with backoff and jitter,
and a publisher that drains the outbox oldest first, deleting rows on PUBACK."""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ..protocol.broker import INFLIGHT, BrokerSettings, make_client
from .config import AgentConfig, read_password
from .outbox import Outbox

log = logging.getLogger(__name__)


def settings_from(cfg: AgentConfig) -> BrokerSettings:
    return BrokerSettings(cfg.broker, cfg.tls_ca, cfg.tls_cert, cfg.tls_key, cfg.username,
                          read_password(cfg))


class Link:
    """Keeps one connection up and drains the outbox through it.

    One sender thread does every publish. paho calls ``on_publish`` while holding
    its own lock, so the callback only queues the acknowledged message id; the
    sender deletes the row. No paho callback ever waits on our locks.
    """

    def __init__(self, cfg: AgentConfig, outbox: Outbox, will: tuple[str, bytes],
                 on_connect: Callable[[], None], on_message: Callable[[str, bytes], None]) -> None:
        self.cfg, self.outbox = cfg, outbox
        self.broker = settings_from(cfg)
        self.client = make_client(self.broker, cfg.device_id, will)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = lambda c, u, m: on_message(m.topic, m.payload)
        self._user_connect = on_connect
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._inflight: dict[int, int] = {}  # mid -> seq; sender thread only
        self._last_sent = 0
        self._reset = threading.Event()
        self._wake = threading.Event()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._delay = cfg.reconnect_min_s

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        for name, target in (("mqtt-link", self._run), ("mqtt-sender", self._sender)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _backoff(self, why: str) -> None:
        """Wait the current delay with +-50% jitter, then double it (up to the maximum)."""
        wait = self._delay * random.uniform(0.5, 1.5)
        log.warning("broker %s: %s; retry in %.1f s", self.cfg.broker, why, wait)
        self._stop.wait(wait)
        self._delay = min(self._delay * 2, self.cfg.reconnect_max_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.connect(self.broker.host, self.broker.port, keepalive=self.cfg.keepalive_s)
            except (OSError, ssl.SSLError) as exc:
                self._backoff(f"connect failed ({exc})")
                continue
            self.client.loop_forever()  # returns when the connection drops
            if not self._stop.is_set():
                self._backoff("connection lost")

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect and end both threads, waiting at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        self.client.disconnect()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s thread still running after %.1f s; leaving it", thread.name,
                            timeout)

    # -- callbacks (paho network thread): never block --------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("broker refused connection: %s", reason_code)
            return
        self._delay = self.cfg.reconnect_min_s
        self._reset.set()
        self.connected.set()
        log.info("connected to %s", self.cfg.broker)
        self._user_connect()
        self._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from broker: %s", reason_code)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        self._acks.put(mid)
        self._wake.set()

    # -- sending (sender thread) -------------------------------------------------
    def pump(self) -> None:
        """Ask the sender to send what is queued."""
        self._wake.set()

    def _sender(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._send_round()
            except Exception:  # a transient paho or SQLite error must not end the sender
                log.exception("sender round failed")

    def _send_round(self) -> None:
        if self._reset.is_set():  # a new connection: resend everything not acknowledged
            self._reset.clear()
            self._inflight.clear()
            self._last_sent = 0
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            seq = self._inflight.pop(mid, None)
            if seq is not None:
                self.outbox.ack(seq)
        room = INFLIGHT - len(self._inflight)
        if room <= 0 or not self.connected.is_set():
            return
        for msg in self.outbox.peek(self._last_sent, room):
            info = self.client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
            if info.rc != 0:
                break
            self._inflight[info.mid] = msg.seq
            self._last_sent = msg.seq

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def unsubscribe(self, topic: str) -> None:
        self.client.unsubscribe(topic)

"""systemd's notify protocol over the plain datagram socket (no library): ``READY=1`` once the
agent runs, ``WATCHDOG=1`` from each turn of its work loop. With ``Type=notify`` and
``WatchdogSec=`` in the unit, a loop that wedges or dies gets the process restarted.
Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op."""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = env.get("WATCHDOG_USEC", "")
        # ping at half the interval systemd expects, at most once a second
        self.interval = max(1.0, int(usec) / 2e6) if usec.isdigit() and int(usec) else 0.0
        self._last = 0.0

    def send(self, state: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(state.encode())
            return True
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", state, exc)
            return False

    def ready(self) -> None:
        self.send("READY=1")

    def ping(self) -> None:
        """WATCHDOG=1, rate-limited to the watchdog interval."""
        now = time.monotonic()
        if self.address and now - self._last >= (self.interval or 1.0):
            self._last = now
            self.send("WATCHDOG=1")

"""A throwaway Mosquitto on a free loopback port, for the scripts and benchmarks that drive real
agents (demo_loop, soak_kill_agent, bench/fleet_scale): started with its own config, ready once
it accepts a connection, stopped by the caller through the returned process."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(work: Path, extra: str = "", timeout: float = 10.0
                    ) -> tuple[subprocess.Popen[bytes], str]:
    """Mosquitto with ``work/mosquitto.conf`` (anonymous, no persistence, ``extra`` lines);
    returns the process and its ``mqtt://`` URL once the port answers."""
    port = free_port()
    conf = work / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""  # as root it would drop to "mosquitto"
    conf.write_text(f"{user}listener {port} 127.0.0.1\npersistence false\n"
                    f"allow_anonymous true\n{extra}")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"mosquitto did not start on port {port} (config {conf})")

"""Small helpers shared by tests that start real servers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A loopback port that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> bytes:
    """GET ``url`` until it answers; fail if ``proc`` exits or ``timeout`` passes."""
    deadline = time.time() + timeout
    while True:
        try:
            return bytes(urllib.request.urlopen(url, timeout=1).read())
        except OSError:
            if time.time() > deadline or (proc is not None and proc.poll() is not None):
                detail = proc.stderr.read().decode(errors="replace") if proc and proc.stderr else ""
                raise AssertionError(f"{url} did not answer: {detail[-1000:]}") from None
            time.sleep(0.2)


def default_bundle_version() -> str:
    """The version of the bundle shipped inside the package."""
    from edge_sentiment.bundle import open_bundle

    return open_bundle(None).manifest.version

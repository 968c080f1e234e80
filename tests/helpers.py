"""Small helpers shared by tests that start real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


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


class Postgres:
    """A throwaway PostgreSQL cluster in a temp folder (initdb / pg_ctl), stopped by PID.

    As root the cluster runs as the ``postgres`` user, since PostgreSQL refuses to run as root."""

    BIN = Path("/usr/lib/postgresql")

    def __init__(self) -> None:
        import shutil
        import tempfile

        bins = sorted(self.BIN.glob("*/bin/initdb"))
        found = bins[-1].parent if bins else None
        if found is None and shutil.which("initdb"):
            found = Path(str(shutil.which("initdb"))).parent
        if found is None:
            raise FileNotFoundError("PostgreSQL's initdb is not installed (Debian: postgresql)")
        self.bin = found
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg://fleet@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> Postgres:
        data = str(self.dir / "data")
        self._run(str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", "fleet")
        self._run(str(self.bin / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        return self

    def stop(self) -> None:
        import shutil
        import signal
        import time

        pid_file = self.dir / "data" / "postmaster.pid"
        if pid_file.is_file():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)

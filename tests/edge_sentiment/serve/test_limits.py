"""Limits of a real server process: slow clients are cut off, a 100 MB body is refused from its
headers and while streaming, and normal requests keep being served with RSS flat."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_http

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "serve", "--bundle", str(TINY),
                             "--runtime", "onnx", "--port", str(port), "--header-timeout", "1",
                             "--body-timeout", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    yield port, proc
    proc.terminate()
    proc.wait(timeout=10)


def _classify(port: int) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/classify",
                                 data=json.dumps({"text": "works well"}).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())  # type: ignore[no-any-return]


def _read_until(s: socket.socket, needle: bytes, got: bytes = b"") -> bytes:
    """Read until ``needle`` arrived or the peer closed: a reply's head and body may come in
    separate segments."""
    out = b""
    while needle not in got + out:
        more = s.recv(4096)
        if not more:
            break
        out += more
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_slow_clients_are_cut_off_and_others_served(server: tuple[int, subprocess.Popen[bytes]]
                                                    ) -> None:
    port, _ = server
    slow = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: app")  # never ends
        slow.append(s)
    assert "prediction" in _classify(port)  # served while 200 heads hang
    time.sleep(2.0)  # past the 1 s head deadline
    closed = 0
    for s in slow:
        s.settimeout(2)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    assert closed == len(slow)
    assert "prediction" in _classify(port)


def test_a_slow_body_gets_408(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"te")
        s.settimeout(6)
        reply = _read_until(s, b'"body_timeout"')
    assert reply.startswith(b"HTTP/1.1 408") and b'"body_timeout"' in reply


@pytest.mark.host  # the server's RSS, from /proc/<pid>/status
def test_a_100_mb_body_is_refused_and_rss_stays_flat(server: tuple[int, subprocess.Popen[bytes]]
                                                     ) -> None:
    port, proc = server
    before = _rss_mb(proc.pid)
    with socket.create_connection(("127.0.0.1", port)) as s:  # declared size: refused at once
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 104857600\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    with socket.create_connection(("127.0.0.1", port)) as s:  # chunked: cut off while streaming
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20))
        reply = b""
        s.settimeout(5)
        try:
            for _ in range(100):  # up to 100 MB, stopping once the server answers
                s.sendall(chunk)
                s.setblocking(False)
                try:
                    reply += s.recv(4096)
                except BlockingIOError:
                    pass
                s.setblocking(True)
                s.settimeout(5)
                if reply:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.setblocking(True)
        s.settimeout(5)
        reply += _read_until(s, b'"body_too_large"', reply)
    assert reply.startswith(b"HTTP/1.1 413") and b'"body_too_large"' in reply
    assert "prediction" in _classify(port)
    assert _rss_mb(proc.pid) - before < 40  # the body was never held whole

"""The try-it page in a real headless Chromium: it classifies and renders, with no CDN."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.fail("headless Chromium not found: apt-get install -y chromium")


def test_page_classifies_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/?q=The%20battery%20died%20after%20two%20days"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True,
                             timeout=90, check=False).stdout
        shot = tmp_path / "page.png"
        subprocess.run([browser, *flags, "--window-size=900,700", f"--screenshot={shot}", url],
                       capture_output=True, timeout=90, check=False)
    finally:
        server.terminate()
        server.wait(10)
    assert '<b id="label">negative</b>' in dom, dom[-2000:]
    assert "edge-sentiment-default 1.0.0 on onnx" in dom
    assert shot.is_file() and shot.stat().st_size > 10_000

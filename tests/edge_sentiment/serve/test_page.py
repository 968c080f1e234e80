"""The try-it page in a real headless Chromium: it classifies and renders, with no CDN."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import default_bundle_version, free_port, wait_http

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.fail("headless Chromium not found: apt-get install -y chromium")


def test_page_classifies_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "edge_sentiment", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/?q=The%20battery%20died%20after%20two%20days"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", server)
        dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True,
                             timeout=90, check=False).stdout
        shot = tmp_path / "page.png"
        subprocess.run([browser, *flags, "--window-size=900,700", f"--screenshot={shot}", url],
                       capture_output=True, timeout=90, check=False)
    finally:
        server.terminate()
        server.wait(10)
    assert '<b id="label">negative</b>' in dom, dom[-2000:]
    assert f"edge-sentiment-default {default_bundle_version()} on onnx" in dom
    assert shot.is_file() and shot.stat().st_size > 10_000
    # the live figures are drawn (SVG), not raw Prometheus lines
    assert 'class="mix" data-label="negative"' in dom, dom[-3000:]
    assert 'class="series" data-name="p50"' in dom and 'class="series" data-name="p95"' in dom
    assert 'class="series" data-name="req/s"' in dom
    assert "edge_sentiment_requests_total" not in dom.split("<script>")[0]

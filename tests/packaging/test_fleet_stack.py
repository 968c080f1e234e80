"""The deployable fleet side: its systemd units verify, and Debian's real Prometheus server
scrapes a real exporter through packaging/fleet/prometheus.yml and answers a device's metric
through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from edge_sentiment.fleet.exporter import start
from edge_sentiment.protocol import BrokerSettings, connect
from tests.helpers import free_port

from ..edge_sentiment.agent.conftest import PREFIX, Broker

FLEET = Path(__file__).parents[2] / "packaging" / "fleet"
ALERTS = Path(__file__).parents[2] / "packaging" / "prometheus" / "alerts.yml"


@pytest.mark.parametrize("unit", ["edge-fleet-exporter.service", "edge-fleet-controller.service"])
def test_fleet_units_verify(unit: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not available (Debian package: systemd)")
    text = (FLEET / unit).read_text()
    assert "ProtectSystem=strict" in text and "NoNewPrivileges=yes" in text
    fake = tmp_path / unit
    fake.write_text(text.replace("/usr/local/bin/edge-sentiment", shutil.which("true") or "/bin/true"))
    done = subprocess.run(["systemd-analyze", "verify", str(fake)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_prometheus_scrapes_the_exporter(broker: Broker, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (Debian package: prometheus)")
    exp_port, web_port = free_port(), free_port()
    client, server, _ = start(BrokerSettings(broker.url), PREFIX, exp_port)
    device = connect(BrokerSettings(broker.url))
    body = {"schema": "edge-sentiment/status/1", "state": "online", "model_version": "2.1.0",
            "backend": "onnx", "profile": "rpi4"}
    device.publish(f"{PREFIX}/devices/prom-1/status", json.dumps(body).encode(), qos=1,
                   retain=True).wait_for_publish(5)
    config = (FLEET / "prometheus.yml").read_text() \
        .replace("scrape_interval: 30s", "scrape_interval: 1s") \
        .replace("127.0.0.1:9108", f"127.0.0.1:{exp_port}") \
        .replace("/etc/prometheus/edge-sentiment-alerts.yml", str(ALERTS))
    (tmp_path / "prometheus.yml").write_text(config)
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    query = urllib.parse.quote('edge_fleet_device_online{device="prom-1"}')
    result: list[dict[str, object]] = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not result:
            time.sleep(1)
            try:
                answer = json.loads(urllib.request.urlopen(
                    f"http://127.0.0.1:{web_port}/api/v1/query?query={query}", timeout=5).read())
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                continue
            result = answer["data"]["result"]
        assert result and result[0]["value"][1] == "1", result  # type: ignore[index]
        rules = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{web_port}/api/v1/rules", timeout=5).read())
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert "EdgeSentimentRolloutAborted" in names and "EdgeSentimentDeviceOffline" in names
    finally:
        proc.terminate()
        proc.wait(10)
        device.disconnect()
        device.loop_stop()
        client.disconnect()
        client.loop_stop()
        server.shutdown()

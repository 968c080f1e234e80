"""Prometheus alert rules (promtool), the Grafana dashboard, and the fleet exporter fed by a
real agent through a real Mosquitto; the agent's on-device drift alert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.fleet.exporter import start
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.slots import SlotStore
from tests.edge_sentiment.agent.conftest import PREFIX, Watcher, make_broker
from tests.helpers import free_port

ROOT = Path(__file__).parents[2]
PROM = ROOT / "packaging" / "prometheus"


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not installed: apt-get install -y prometheus")
    return tool


def test_alert_rules_check_and_unit_tests() -> None:
    tool = _promtool()
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        r = subprocess.run([tool, *args], cwd=PROM, capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    text = (PROM / "alerts.yml").read_text()
    for name in ("DeviceOffline", "LatencyOverSLO", "Drift", "UpdateRolledBack"):
        assert f"EdgeSentiment{name}" in text


def test_dashboard_has_every_panel() -> None:
    dash = json.loads((ROOT / "packaging/grafana/edge-sentiment-fleet.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("edge_fleet_device_online", "edge_fleet_model_info", "edge_fleet_latency_p95_ms",
                   "edge_fleet_throughput_per_s", "edge_fleet_class_share", "edge_fleet_drift_class_psi",
                   "edge_fleet_errors", "edge_fleet_update_events", "edge_fleet_online_accuracy"):
        assert metric in exprs, metric


def test_exporter_shows_agent_metrics_and_alerts(tmp_path: Path) -> None:
    broker = make_broker(tmp_path)
    broker.start()
    state = tmp_path / "state"
    SlotStore(state).ensure(ROOT / "tests/fixtures/tiny_bundle")
    clf = SentimentClassifier.load(state / "current", runtime="onnx")
    agent = Agent(clf, AgentConfig(broker=broker.url, device_id="exp-1", state_dir=state,
                                   runtime="onnx", metrics_interval_s=0.5, alert_psi=0.0001))
    port = free_port()
    client, server, _ = start(BrokerSettings(broker.url), PREFIX, port)
    watcher = Watcher(broker)
    agent.start()
    try:
        for pred in clf.classify(["great product"] * 25):
            agent.feedback(pred.id, pred.label)  # an embedding app's ground truth
        version = clf.info.bundle["version"]
        truth = f'edge_fleet_online_accuracy{{device="exp-1",model_version="{version}"}} 1.0'
        alert = watcher.wait_for(lambda t, b: t.endswith("exp-1/alerts"))
        assert alert["alert"] in ("class_psi", "confidence_psi") and alert["value"] > 0.0001
        watcher.wait_for(lambda t, b: t.endswith("exp-1/metrics") and b["count"] == 25)
        # The window gauges change every 0.5 s; the running total stays at 25 once the exporter
        # has the window, however late this scrape comes.
        body = ""
        for _ in range(100):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if 'edge_fleet_predictions_total{device="exp-1"} 25.0' in body and truth in body:
                break
            __import__("time").sleep(0.1)
        assert 'edge_fleet_device_online{device="exp-1"} 1.0' in body
        assert 'edge_fleet_predictions_total{device="exp-1"} 25.0' in body
        assert 'edge_fleet_window_predictions{device="exp-1"}' in body
        assert truth in body and "edge_fleet_online_outcomes" in body
        documented = set(re.findall(r"\bedge_fleet_[a-z0-9_]+", (ROOT / "docs/serve.md").read_text()))
        served = set(re.findall(r"^(edge_fleet_[a-z0-9_]+)[{ ]", body, re.M))
        assert served <= documented, f"served but not documented: {served - documented}"
        assert documented - served <= {"edge_fleet_update_events_total",
                                       "edge_fleet_rejected_messages_total"}, documented - served
        assert 'edge_fleet_model_info{backend="onnx",device="exp-1"' in body
        assert "edge_fleet_latency_p95_ms" in body and "edge_fleet_alerts" in body
    finally:
        agent.stop()
        watcher.close()
        client.disconnect()
        client.loop_stop()
        server.shutdown()
        broker.stop()

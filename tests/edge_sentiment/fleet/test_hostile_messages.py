"""One device cannot break fleet monitoring: hostile messages on every topic the exporter and
`fleet status` read are dropped and counted for that device; the fleet's figures still render."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from edge_sentiment.fleet.exporter import FleetCollector, FleetState
from edge_sentiment.fleet.ops import _row
from edge_sentiment.protocol.messages import parse

P = "edge-sentiment/devices"
GOOD_STATUS = json.dumps({"state": "online", "model_version": "2.0.0", "backend": "onnx",
                          "profile": "generic-x86_64"}).encode()
GOOD_METRICS = json.dumps({"count": 10, "errors": 0, "latency_ms": {"p95": 1.5},
                           "labels": {"positive": 6, "negative": 4},
                           "drift": {"class_psi": 0.01}}).encode()
HOSTILE = [
    ("metrics", json.dumps({"count": "lots", "labels": {"positive": "x"}}).encode()),
    ("metrics", json.dumps({"count": 5, "labels": {"positive": -3}}).encode()),
    ("metrics", json.dumps({"count": 5, "latency_ms": {"p95": {"nested": [1, 2]}}}).encode()),
    ("metrics", b'{"count": NaN}'),
    ("metrics", b"[" * 5000 + b"]" * 5000),
    ("status", json.dumps({"state": {"deep": {"er": 1}}}).encode()),
    ("status", b"[1, 2, 3]"),
    ("status", b"not json at all"),
    ("status", b"x" * 100_000),
    ("update", json.dumps({"event": ["a"]}).encode()),
    ("alerts", b"null"),
]


def _render(state: FleetState) -> str:
    registry = CollectorRegistry()
    registry.register(FleetCollector(state))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_hostile_messages_are_counted_and_the_fleet_still_renders() -> None:
    state = FleetState()
    state.on_message(f"{P}/good/status", GOOD_STATUS)
    state.on_message(f"{P}/good/metrics", GOOD_METRICS)
    for kind, payload in HOSTILE:
        state.on_message(f"{P}/evil/{kind}", payload)  # must never raise
    state.on_message(f"{P}/{'x' * 500}/status", GOOD_STATUS)  # not a device id: ignored
    text = _render(state)
    assert 'edge_fleet_latency_p95_ms{device="good"} 1.5' in text
    assert 'edge_fleet_class_share{device="good",label="positive"} 0.6' in text
    assert 'edge_fleet_rejected_messages_total{device="evil",kind="metrics"} 5.0' in text
    assert 'edge_fleet_rejected_messages_total{device="evil",kind="status"} 4.0' in text
    assert "evil" not in text.split("edge_fleet_rejected_messages")[0]  # no figures from it


@pytest.mark.parametrize(("kind", "payload"), HOSTILE)
def test_schema_refuses_each_hostile_message(kind: str, payload: bytes) -> None:
    assert parse(kind, payload) is None


def test_fleet_status_row_survives_a_list_status() -> None:
    row = _row({"device": "d", "rejected": 2})
    assert row["rejected_messages"] == 2 and row["online"] is False
    good = _row({"device": "d", "status": parse("status", GOOD_STATUS),
                 "metrics": parse("metrics", GOOD_METRICS)})
    assert good["online"] and good["p95_ms"] == 1.5 and good["count"] == 10

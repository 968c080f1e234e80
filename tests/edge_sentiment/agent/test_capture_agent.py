"""Capture through a real agent and Mosquitto: what leaves the device under each setting,
asserted on everything the broker carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.agent.config import build_config
from edge_sentiment.capture import CaptureLimits, SampleStore
from edge_sentiment.errors import ConfigError
from edge_sentiment.slots import SlotStore

from .conftest import PREFIX, Broker, Watcher

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"
MARK = "zebracrossing"  # a word no message may carry unless samples are uploaded


def _run(broker: Broker, state: Path, device: str, **extra: object) -> list[tuple[str, object]]:
    """Classify and label texts on an agent; return everything the broker carried meanwhile."""
    watch = Watcher(broker, topic="#")
    SlotStore(state).ensure(TINY)
    clf = SentimentClassifier.load(state / "current", runtime="onnx")
    agent = Agent(clf, AgentConfig(broker=broker.url, device_id=device, state_dir=state,
                                   runtime="onnx", metrics_interval_s=0.3, alert_psi=100.0,
                                   capture_low_confidence_rate=1.0, **extra))  # type: ignore[arg-type]
    agent.start()
    try:
        texts = [f"the {MARK} blender number {i}, mail me at a{i}@example.com" for i in range(6)]
        for pred in agent.clf.classify(texts):
            agent.feedback(pred.id, "negative")
        watch.wait_for(lambda t, b: t.endswith(f"{device}/metrics")
                       and b["outcomes"]["count"] == 6)
        if extra.get("upload_samples"):
            watch.wait_for(lambda t, b: t == f"{PREFIX}/samples/{device}" and b["kind"] == "feedback")
    finally:
        agent.stop()
        watch.close()
    return watch.messages


@pytest.mark.parametrize("capture", [False, True])
def test_without_upload_only_status_and_metrics_leave_the_device(broker: Broker, tmp_path: Path,
                                                                 capture: bool) -> None:
    seen = _run(broker, tmp_path / "s", "c1", capture=capture)
    topics = {t for t, _ in seen}
    assert topics == {f"{PREFIX}/devices/c1/status", f"{PREFIX}/devices/c1/metrics"}, topics
    assert all(MARK not in json.dumps(b) and "example.com" not in json.dumps(b) for _, b in seen)
    stored = SampleStore(tmp_path / "s" / "samples.sqlite", CaptureLimits()).rows() \
        if capture else []
    assert sum(r["kind"] == "feedback" for r in stored) == (6 if capture else 0)
    assert all("[email]" in r["text"] and "example.com" not in r["text"] for r in stored)
    assert capture or not (tmp_path / "s" / "samples.sqlite").exists()


def test_upload_sends_redacted_samples_on_their_own_topic(broker: Broker, tmp_path: Path) -> None:
    seen = _run(broker, tmp_path / "s", "c2", capture=True, upload_samples=True)
    samples = [b for t, b in seen if t == f"{PREFIX}/samples/c2"]
    feedback = [b for b in samples if isinstance(b, dict) and b["kind"] == "feedback"]
    assert len(feedback) == 6 and all(b["label"] == "negative" for b in feedback)
    assert all("[email]" in b["text"] and "example.com" not in b["text"] for b in feedback)
    assert {b["schema"] for b in samples} == {"edge-sentiment/sample/1"}
    assert all(b["device"] == "c2" and b["model_version"] == "0.0.1" for b in feedback)
    assert not any(t.startswith(f"{PREFIX}/devices/") and MARK in json.dumps(b) for t, b in seen)


def test_upload_without_capture_is_refused() -> None:
    with pytest.raises(ConfigError, match="upload_samples needs capture = true"):
        build_config({"broker": "mqtt://h:1883", "device_id": "d", "state_dir": "/tmp/x",
                      "upload_samples": True})

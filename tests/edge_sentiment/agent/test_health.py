"""Health after install: the pure verdicts, and a real agent that marks a slot good or steps
back by itself (Mosquitto, signed releases, the tiny bundle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.agent.health import HealthRules, Trial, Window, baseline, judge
from edge_sentiment.fleet.ops import keygen, publish_release, sign_release, trust_file
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.slots import SlotStore

from .conftest import PREFIX, Broker, Watcher, update_event

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"
RULES = HealthRules(min_texts=100, min_seconds=60, timeout_s=600)


def _body(n: int, labels: dict[str, int], p95: float = 1.0, errors: int = 0,
          low: float = 0.1) -> dict[str, Any]:
    hist = [0, 0, 0, 0, 0, n // 2, n - n // 2]
    return {"count": n, "errors": errors, "labels": labels, "latency_ms": {"p95": p95},
            "confidence": {"histogram": hist, "low_share": low}}


BEFORE = baseline([_body(100, {"negative": 50, "positive": 50})] * 3)


@pytest.mark.parametrize("after, elapsed, starts, state, reason", [
    (_body(50, {"negative": 25, "positive": 25}), 100, 1, "wait", ""),
    (_body(200, {"negative": 100, "positive": 100}), 30, 1, "wait", ""),
    (_body(200, {"negative": 100, "positive": 100}), 100, 1, "healthy", ""),
    (_body(10, {"negative": 5, "positive": 5}), 700, 1, "healthy", "no traffic to judge"),
    (_body(200, {"negative": 100, "positive": 100}, errors=10), 100, 1, "unhealthy", "error share"),
    (_body(200, {"negative": 100, "positive": 100}, p95=2.5), 100, 1, "unhealthy", "p95"),
    (_body(200, {"negative": 100, "positive": 100}, low=0.5), 100, 1, "unhealthy", "low-confidence"),
    (_body(200, {"negative": 190, "positive": 10}), 100, 1, "unhealthy", "class-mix PSI"),
    (_body(200, {"negative": 100, "positive": 100}), 10, 4, "unhealthy", "crash loop"),
])
def test_judge(after: dict[str, Any], elapsed: float, starts: int, state: str,
               reason: str) -> None:
    win = Window()
    win.add(after)
    verdict = judge(BEFORE, win, elapsed, starts, RULES)
    assert verdict.state == state and verdict.reason.startswith(reason), verdict


def test_a_trial_survives_the_file_round_trip() -> None:
    trial = Trial("1.2.3", 10.0, BEFORE, starts=2)
    trial.after.add(_body(7, {"neutral": 7}))
    again = Trial.from_json(json.loads(json.dumps(trial.to_json())))
    assert again == trial and again.after.texts == 7 and BEFORE.p95 == 1.0


@pytest.fixture
def setup(broker: Broker, tmp_path: Path) -> dict[str, Any]:
    key, pub = keygen(tmp_path / "keys", "k")
    trust_file([pub], 1, tmp_path / "trust.json")
    sign_release(TINY, [key], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384)
    golden = json.loads((TINY / "manifest.json").read_text())["golden"]
    by_label: dict[str, list[str]] = {}
    for g in golden:
        by_label.setdefault(g["label"], []).append(g["text"])
    return {"broker": broker, "trust": tmp_path / "trust.json", "release": tmp_path / "rel",
            "state": tmp_path / "state", "texts": by_label}


def _agent(s: dict[str, Any], device: str, **extra: Any) -> Agent:
    SlotStore(s["state"]).ensure(TINY)
    clf = SentimentClassifier.load(s["state"] / "current", runtime="onnx")
    # p95 over a few texts on a loaded test machine is noise: the pure tests judge latency
    settings = {"health_min_texts": 20, "health_min_seconds": 0, "alert_psi": 100.0,
                "health_max_p95_ratio": 1000.0, **extra}
    cfg = AgentConfig(broker=s["broker"].url, device_id=device, state_dir=s["state"],
                      trust=s["trust"], runtime="onnx", metrics_interval_s=0.3, **settings)
    agent = Agent(clf, cfg)
    agent.start()
    return agent


class Traffic:
    """Classifies ``texts`` on the agent every 0.1 s, in the background, until stopped."""

    def __init__(self, agent: Agent, texts: list[str]) -> None:
        import threading

        self.agent, self.texts = agent, texts
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.1):
            self.agent.clf.classify(list(self.texts))

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)


def _install(s: dict[str, Any], watcher: Watcher, device: str) -> None:
    publish_release(BrokerSettings(s["broker"].url), s["release"], PREFIX)
    watcher.wait_for(update_event(device, "active"))


def _baseline(watcher: Watcher, device: str) -> None:
    watcher.wait_for(lambda t, b: t.endswith(f"{device}/metrics") and b["count"] >= 20)


def test_a_healthy_window_marks_the_slot_good(setup: dict[str, Any], watcher: Watcher) -> None:
    agent = _agent(setup, "h1")
    traffic = Traffic(agent, setup["texts"]["negative"] * 4)
    try:
        _baseline(watcher, "h1")
        _install(setup, watcher, "h1")
        healthy = watcher.wait_for(update_event("h1", "healthy"))
        assert healthy["version"] == "0.0.2" and healthy["health"]["texts"] >= 20
    finally:
        traffic.stop()
        agent.stop()
    assert SlotStore(setup["state"]).state()["good_version"] == "0.0.2"
    assert not (setup["state"] / "trial.json").exists()


def test_a_skewed_window_steps_back_by_itself(setup: dict[str, Any], watcher: Watcher) -> None:
    agent = _agent(setup, "h2", health_max_psi=0.5)
    labels = sorted(setup["texts"])
    traffic = Traffic(agent, setup["texts"][labels[0]] * 4)
    try:
        _baseline(watcher, "h2")
        traffic.texts = setup["texts"][labels[-1]] * 4  # the class mix flips from now on
        _install(setup, watcher, "h2")
        back = watcher.wait_for(update_event("h2", "rolled_back"))
        assert back["reason"] == "unhealthy" and back["detail"].startswith("class-mix PSI")
        assert back["version"] == "0.0.2" and back["current"] == "0.0.1"
        assert agent.clf.info.bundle["version"] == "0.0.1"
    finally:
        traffic.stop()
        agent.stop()
    slots = SlotStore(setup["state"])
    assert slots.current_version() == "0.0.1" and slots.installed_version() == "0.0.2"


def test_a_crash_loop_during_the_trial_steps_back(setup: dict[str, Any], watcher: Watcher) -> None:
    agent = _agent(setup, "h3", health_max_starts=2, health_min_texts=10_000)
    _install(setup, watcher, "h3")
    agent.stop()
    for _ in range(2):  # two more starts during the trial: the second is over the limit
        agent = _agent(setup, "h3", health_max_starts=2, health_min_texts=10_000)
        agent.stop()
    back = watcher.wait_for(update_event("h3", "rolled_back"))
    assert back["reason"] == "unhealthy" and back["detail"].startswith("crash loop")
    assert SlotStore(setup["state"]).current_version() == "0.0.1"


def test_the_cli_steps_back_before_loading_a_crash_looping_model(setup: dict[str, Any],
                                                                watcher: Watcher) -> None:
    from edge_sentiment.agent.cli import _escape_crash_loop

    agent = _agent(setup, "h4", health_max_starts=2, health_min_texts=10_000)
    _install(setup, watcher, "h4")
    agent.stop()
    trial = json.loads((setup["state"] / "trial.json").read_text())
    (setup["state"] / "trial.json").write_text(json.dumps({**trial, "starts": 2}))
    cfg = agent.cfg
    slots = SlotStore(setup["state"])
    _escape_crash_loop(cfg, slots)  # what `edge-sentiment agent` does before it loads
    assert slots.current_version() == "0.0.1"
    agent = _agent(setup, "h4", health_max_starts=2, health_min_texts=10_000)
    agent.stop()
    back = watcher.wait_for(update_event("h4", "rolled_back"))
    assert back["reason"] == "unhealthy" and back["detail"].startswith("crash loop")
    assert back["current"] == "0.0.1"

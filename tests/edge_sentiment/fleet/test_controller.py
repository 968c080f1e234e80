"""Staged rollouts: the controller's pure decisions, and a real controller driving real agents
on Mosquitto through 1% -> 10% -> 100%, an automatic abort, and a restart mid-rollout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment.cli import main
from edge_sentiment.fleet.controller import Controller, ControllerDB
from edge_sentiment.fleet.ops import keygen, publish_release, sign_release
from edge_sentiment.fleet.rollout_plan import Plan, Progress, decide, failed
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.protocol.rollout import bucket

from ..agent.conftest import PREFIX, Broker, Watcher, update_event

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"
PLAN = Plan("stable", "1.1.0", "a" * 64, "salt", (0.01, 0.1, 1.0), bake_s=60,
            healthy_share=1.0, max_failure_share=0.2, min_devices=2)
FLEET = {f"d{i}" for i in range(200)}


def _in(share: float) -> set[str]:
    return {d for d in FLEET if bucket(d, "salt") < share}


def test_a_phase_advances_after_its_bake_once_its_devices_are_healthy() -> None:
    progress = Progress(phase_started=0.0)
    healthy = {d: ("healthy", "") for d in _in(0.01)}
    assert decide(PLAN, progress, FLEET, healthy, now=30) is None  # still baking
    d = decide(PLAN, progress, FLEET, {}, now=61)
    assert d is None or not _in(0.01)  # nobody healthy yet
    d = decide(PLAN, progress, FLEET, healthy, now=61)
    assert d is not None and (d.kind, d.phase) == ("advance", 1)
    last = Progress(phase=2, phase_started=0.0)
    done = decide(PLAN, last, FLEET, {dev: ("healthy", "") for dev in FLEET}, now=61)
    assert done is not None and done.kind == "done"
    assert decide(PLAN, Progress(state="paused"), FLEET, healthy, now=1e9) is None


def test_failures_abort_once_enough_devices_tried() -> None:
    progress = Progress(phase=2, phase_started=0.0)
    one = {"d1": ("rolled_back", "unhealthy")}
    assert decide(PLAN, progress, FLEET, one, now=1) is None  # one device: not enough yet
    two = {**one, "d2": ("rejected", "self_test_failed"), "d3": ("healthy", "")}
    d = decide(PLAN, progress, FLEET, two, now=1)
    assert d is not None and d.kind == "abort" and d.reason.startswith("2 of 3 devices")
    waiting = {"d1": ("rejected", "not_in_rollout"), "d2": ("rolled_back", "revoked")}
    assert decide(PLAN, progress, FLEET, waiting, now=1) is None  # waiting, or our own abort
    assert failed("rejected", "bundle_hash_mismatch") and not failed("rejected", "disk_full")


def test_a_bad_plan_is_refused() -> None:
    for bad in ({"phases": (0.5, 0.1)}, {"phases": ()}, {"healthy_share": 0.0},
                {"min_devices": 0}):
        with pytest.raises(ValueError):
            Plan("stable", "1.1.0", "a" * 64, "s", **{"phases": (1.0,), **bad})  # type: ignore[arg-type]


@pytest.fixture
def fleet(broker: Broker, run_agent: Callable[..., Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    release_key, release_pub = keygen(tmp_path / "keys", "release")
    rollout_key, rollout_pub = keygen(tmp_path / "keys", "rollout")
    trust = tmp_path / "trust.json"
    assert main(["fleet", "trust", "--out", str(trust), "--rollout-key", str(rollout_pub),
                 str(release_pub)]) == 0
    salt = "0.0.2"  # the default salt: the release version
    names = [f"pi-{i}" for i in range(5000)]
    pick = [next(n for n in names if bucket(n, salt) < 0.01),
            next(n for n in names if 0.01 <= bucket(n, salt) < 0.1),
            next(n for n in names if bucket(n, salt) >= 0.5)]
    golden = json.loads((TINY / "manifest.json").read_text())["golden"]
    texts = [g["text"] for g in golden if g["label"] == golden[0]["label"]]
    agents = [run_agent(name, "stable", trust, metrics_interval_s=0.3, health_min_texts=5,
                        health_min_seconds=0, alert_psi=100.0,
                        # a loaded test machine's p95 over a few texts is noise: not judged here
                        health_max_p95_ratio=1000.0) for name in pick]
    stop = threading.Event()

    def traffic() -> None:  # every device classifies the same kind of text all along
        while not stop.is_set():
            for agent in agents:
                agent.clf.classify(texts)
            time.sleep(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    sign_release(TINY, [release_key], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384)
    publish_release(BrokerSettings(broker.url), tmp_path / "rel", PREFIX)
    yield {"broker": broker, "key": rollout_key, "release": tmp_path / "rel", "names": pick,
           "agents": agents, "db": tmp_path / "ctl.sqlite"}
    stop.set()
    worker.join(5)


def _controller(f: dict[str, Any]) -> tuple[Controller, threading.Event]:
    ctl = Controller(BrokerSettings(f["broker"].url), PREFIX, ControllerDB(f["db"]), f["key"])
    ctl.start()
    done = threading.Event()

    def loop() -> None:
        while not done.wait(0.2):
            ctl.tick()

    threading.Thread(target=loop, daemon=True).start()
    deadline = time.time() + 30  # the agents' retained statuses: the controller knows them
    while not set(f["names"]) <= ControllerDB(f["db"]).devices() and time.time() < deadline:
        time.sleep(0.1)
    return ctl, done


def _start(f: dict[str, Any], *extra: str) -> None:
    assert main(["fleet", "rollout", "start", "--db", str(f["db"]), "--release", str(f["release"]),
                 "--phases", "1,10,100", "--bake", "0", "--healthy-share", "1",
                 "--min-devices", "1", *extra]) == 0


def _state(f: dict[str, Any]) -> dict[str, Any]:
    return ControllerDB(f["db"]).rollouts()[0][1].to_json()


def test_a_good_release_goes_through_every_phase(fleet: dict[str, Any], watcher: Watcher) -> None:
    ctl, done = _controller(fleet)
    try:
        _start(fleet)
        first, second, third = fleet["names"]
        watcher.wait_for(update_event(first, "healthy"), timeout=30)
        watcher.wait_for(update_event(second, "healthy"), timeout=30)
        watcher.wait_for(update_event(third, "healthy"), timeout=30)
        deadline = time.time() + 10
        while _state(fleet)["state"] != "done" and time.time() < deadline:
            time.sleep(0.2)
    finally:
        done.set()
        ctl.stop()
    kinds = [h["kind"] for h in _state(fleet)["history"]]
    assert kinds == ["start", "advance", "advance", "done"], kinds
    order = [b["device"] for t, b in watcher.messages
             if isinstance(b, dict) and b.get("event") == "active"]
    assert order == fleet["names"], "each device installs only once its phase is reached"
    from prometheus_client import CollectorRegistry, generate_latest

    from edge_sentiment.fleet.rollout_cli import RolloutCollector

    registry = CollectorRegistry()
    registry.register(RolloutCollector(ControllerDB(fleet["db"])))  # type: ignore[arg-type]
    served = generate_latest(registry).decode()
    assert 'edge_fleet_rollout_share{channel="stable",state="done",version="0.0.2"} 1.0' in served
    assert 'edge_fleet_rollout_decisions_total{channel="stable",kind="advance",version="0.0.2"} 2.0' \
        in served
    assert 'edge_fleet_rollout_devices{channel="stable",event="healthy",version="0.0.2"} 3.0' in served


def test_a_failing_release_aborts_at_its_first_phase_and_survives_a_restart(
        fleet: dict[str, Any], watcher: Watcher) -> None:
    ctl, done = _controller(fleet)
    _start(fleet, "--bake", "1h")  # it would wait an hour per phase
    first, second, third = fleet["names"]
    watcher.wait_for(update_event(first, "active"), timeout=30)
    done.set()
    ctl.stop()  # the controller dies mid-rollout; a new one resumes from its file
    ctl, done = _controller(fleet)
    try:
        assert main(["fleet", "rollout", "abort", "--db", str(fleet["db"])]) == 0
        back = watcher.wait_for(update_event(first, "rolled_back"), timeout=30)
        assert (back["reason"], back["current"]) == ("revoked", "0.0.1")
    finally:
        done.set()
        ctl.stop()
    state = _state(fleet)
    assert state["state"] == "aborted" and [h["kind"] for h in state["history"]] == \
        ["start", "abort"]
    assert not any(isinstance(b, dict) and b.get("event") == "active"
                   and b.get("device") in (second, third) for _, b in watcher.messages)


def test_a_release_that_is_unsure_in_the_field_aborts_by_itself(
        fleet: dict[str, Any], watcher: Watcher, tmp_path: Path) -> None:
    """A signed release whose scores are flattened (temperature 20: the same labels, so it
    passes its golden self-test) fails the first device's health window on its confidence; the
    controller aborts at the first phase, and the other devices never install it."""
    unsure = tmp_path / "unsure"
    import shutil

    shutil.copytree(TINY, unsure)
    manifest = json.loads((unsure / "manifest.json").read_text())
    manifest.update(calibration={"temperature": 20.0, "bias": [0.0, 0.0, 0.0]},
                    golden_tolerance=1.0)
    (unsure / "manifest.json").write_text(json.dumps(manifest))
    release_key = fleet["key"].parent / "release.key"
    sign_release(unsure, [release_key], "0.0.3", "stable", tmp_path / "rel3", chunk_size=16384)
    publish_release(BrokerSettings(fleet["broker"].url), tmp_path / "rel3", PREFIX)
    ctl, done = _controller(fleet)
    try:
        assert main(["fleet", "rollout", "start", "--db", str(fleet["db"]), "--release",
                     str(tmp_path / "rel3"), "--phases", "1,10,100", "--bake", "0",
                     "--min-devices", "1", "--salt", "0.0.2"]) == 0
        first, second, third = fleet["names"]
        back = watcher.wait_for(update_event(first, "rolled_back"), timeout=30)
        assert back["reason"] == "unhealthy" and "confidence" in back["detail"], back
        deadline = time.time() + 10
        while _state(fleet)["state"] != "aborted" and time.time() < deadline:
            time.sleep(0.2)
    finally:
        done.set()
        ctl.stop()
    state = _state(fleet)
    assert state["state"] == "aborted" and state["phase"] == 0
    assert state["reason"].startswith("1 of 1 devices that tried 0.0.3 failed")
    assert not any(isinstance(b, dict) and b.get("event") == "active"
                   and b.get("device") in (second, third) for _, b in watcher.messages)
    assert fleet["agents"][0].clf.info.bundle["version"] == "0.0.1"


def test_a_directive_is_signed_again_before_it_expires(broker: Broker, tmp_path: Path) -> None:
    release_key, _ = keygen(tmp_path / "keys", "release")
    rollout_key, _ = keygen(tmp_path / "keys", "rollout")
    sign_release(TINY, [release_key], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384)
    db = ControllerDB(tmp_path / "ctl.sqlite")
    ctl = Controller(BrokerSettings(broker.url), PREFIX, db, rollout_key, expires_hours=1 / 3600)
    ctl.start()
    try:
        assert main(["fleet", "rollout", "start", "--db", str(tmp_path / "ctl.sqlite"),
                     "--release", str(tmp_path / "rel"), "--bake", "1h"]) == 0
        ctl.tick()
        assert db.rollouts()[0][1].sequence == 1
        ctl.tick()
        assert db.rollouts()[0][1].sequence == 1  # fresh: not signed again
        time.sleep(0.6)  # past half of its one-second life
        ctl.tick()
        assert db.rollouts()[0][1].sequence == 2 and db.rollouts()[0][1].state == "active"
    finally:
        ctl.stop()

"""The simulator drives the real controller on Mosquitto: hundreds of devices through every
phase, and an abort when the first phase's devices fail their health windows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edge_sentiment.cli import main
from edge_sentiment.fleet.controller import Controller, ControllerDB
from edge_sentiment.fleet.ops import keygen, sign_release
from edge_sentiment.fleet.simulate import Simulator
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.protocol.rollout import bucket

from ..agent.conftest import PREFIX, Broker

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def _run(broker: Broker, tmp_path: Path, fail_share: float, phases: str) -> tuple[Simulator, ControllerDB]:
    release_key, _ = keygen(tmp_path / "keys", "release")
    rollout_key, _ = keygen(tmp_path / "keys", "rollout")
    sign_release(TINY, [release_key], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384)
    settings = BrokerSettings(broker.url)
    sim = Simulator(settings, PREFIX, 400, fail_share=fail_share, health_delay=0.2,
                    install_delay=0.2, seed=1)
    db = ControllerDB(tmp_path / "ctl.sqlite")
    ctl = Controller(settings, PREFIX, db, rollout_key)
    sim.start()
    ctl.start()
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.05):
            sim.step()
            ctl.tick()

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    deadline = time.time() + 30  # the retained statuses reach the controller: it knows the fleet
    while len(db.devices()) < 400 and time.time() < deadline:
        time.sleep(0.1)
    assert len(db.devices()) == 400
    assert main(["fleet", "rollout", "start", "--db", str(tmp_path / "ctl.sqlite"), "--release",
                 str(tmp_path / "rel"), "--phases", phases, "--bake", "0.5",
                 "--healthy-share", "0.9", "--min-devices", "3"]) == 0
    deadline = time.time() + 40
    while db.rollouts()[0][1].state not in ("done", "aborted") and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # the last events
    stop.set()
    worker.join(5)
    ctl.stop()
    sim.stop()
    return sim, db


def test_hundreds_of_devices_go_through_every_phase(broker: Broker, tmp_path: Path) -> None:
    sim, db = _run(broker, tmp_path, 0.0, "5,25,100")
    progress = db.rollouts()[0][1]
    assert progress.state == "done", progress
    assert [h["kind"] for h in progress.history] == ["start", "advance", "advance", "done"]
    assert {d.version for d in sim.devices.values()} == {"0.0.2"}


@pytest.mark.parametrize("fail_share", [0.5])
def test_failing_devices_abort_the_first_phase(broker: Broker, tmp_path: Path,
                                               fail_share: float) -> None:
    sim, db = _run(broker, tmp_path, fail_share, "5,25,100")
    progress = db.rollouts()[0][1]
    assert progress.state == "aborted" and progress.phase == 0, progress
    outside = [d for d in sim.devices.values() if bucket(d.device, "0.0.2") >= 0.05]
    assert outside and all(d.version == "0.0.1" for d in outside), "the rest never installed"
    assert all(d.version == "0.0.1" for d in sim.devices.values()), "the first phase stepped back"


def test_the_long_running_commands_start_and_stop(broker: Broker, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    rollout_key, _ = keygen(tmp_path / "keys", "rollout")
    base = ["fleet"]
    assert main([*base, "simulate", "--broker", broker.url, "--prefix", PREFIX, "--devices", "5",
                 "--seconds", "0.5"]) == 0
    assert '"versions": {"0.0.1": 5}' in capsys.readouterr().out
    assert main([*base, "controller", "--broker", broker.url, "--prefix", PREFIX, "--db",
                 str(tmp_path / "c.sqlite"), "--key", str(rollout_key), "--run-for", "0.5",
                 "--tick", "0.1"]) == 0
    assert main([*base, "collect", "--broker", broker.url, "--prefix", PREFIX, "--db",
                 f"sqlite:///{tmp_path / 's.db'}", "--run-for", "0.5"]) == 0
    assert '"stored": 0' in capsys.readouterr().out
    assert main([*base, "rollout", "status", "--db", str(tmp_path / "c.sqlite")]) == 0
    assert main([*base, "rollout", "pause", "--db", str(tmp_path / "c.sqlite")]) == 2

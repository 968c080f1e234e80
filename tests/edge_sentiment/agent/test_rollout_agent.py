"""Rollout directives end to end: a real agent on a real Mosquitto with a trust file naming a
rollout role installs only what a directive sends it, and steps back when it is revoked."""

from __future__ import annotations

from pathlib import Path

from edge_sentiment.cli import main
from edge_sentiment.fleet.ops import keygen, publish_release, sign_release
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.protocol.rollout import bucket

from .conftest import PREFIX, Broker, Watcher, update_event

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def _directive(broker: Broker, key: Path, release: Path, seq: int, share: float,
               *extra: str) -> None:
    """``fleet rollout-sign`` then ``fleet publish --rollout``, as an operator runs them."""
    out = release.parent / f"rollout-{seq}.json"
    assert main(["fleet", "rollout-sign", "--key", str(key), "--release", str(release),
                 "--sequence", str(seq), "--share", str(share), "--salt", "salt",
                 "--out", str(out), *extra]) == 0
    assert main(["fleet", "publish", "--broker", broker.url, "--prefix", PREFIX,
                 "--rollout", str(out)]) == 0


def test_a_directive_gates_the_install_and_an_abort_steps_back(
        broker: Broker, watcher: Watcher, run_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    release_key, release_pub = keygen(tmp_path / "keys", "release")
    rollout_key, rollout_pub = keygen(tmp_path / "keys", "rollout")
    trust = tmp_path / "trust.json"
    assert main(["fleet", "trust", "--out", str(trust), "--rollout-key", str(rollout_pub),
                 str(release_pub)]) == 0
    device = next(f"pi-{i}" for i in range(100) if bucket(f"pi-{i}", "salt") >= 0.5)
    agent = run_agent(device, "stable", trust)
    sign_release(TINY, [release_key], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384)
    publish_release(BrokerSettings(broker.url), tmp_path / "rel", PREFIX)
    waiting = watcher.wait_for(update_event(device, "rejected"))
    assert waiting["reason"] == "no_directive"
    _directive(broker, rollout_key, tmp_path / "rel", 1, 0.5)  # the device is outside
    outside = watcher.wait_for(lambda t, b: update_event(device, "rejected")(t, b)
                               and b["reason"] == "not_in_rollout")
    assert "share" in outside["detail"] and agent.slots.current_version() == "0.0.1"
    _directive(broker, rollout_key, tmp_path / "rel", 2, 1.0)  # everyone
    assert watcher.wait_for(update_event(device, "active"))["version"] == "0.0.2"
    _directive(broker, release_key, tmp_path / "rel", 3, 0.0)  # not the rollout role
    forged = watcher.wait_for(lambda t, b: update_event(device, "rejected")(t, b)
                              and b.get("kind") == "rollout")
    assert forged["reason"] == "unknown_key"
    _directive(broker, rollout_key, tmp_path / "rel", 4, 0.0, "--state", "aborted",
               "--revoke", "0.0.2")
    back = watcher.wait_for(update_event(device, "rolled_back"))
    assert (back["reason"], back["version"], back["current"]) == ("revoked", "0.0.2", "0.0.1")
    assert agent.clf.info.bundle["version"] == "0.0.1", "the running classifier stepped back"

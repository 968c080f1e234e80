"""What the fleet side checks before it signs, and the retained state it can clear: a release
(fleet unpublish) and a dead device (fleet forget); fleet status shows the last update."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge_sentiment.errors import ConfigError, SelfTestError
from edge_sentiment.fleet.ops import (
    fleet_status,
    forget_device,
    keygen,
    publish_release,
    sign_release,
    unpublish_release,
)
from edge_sentiment.protocol import BrokerSettings, Topics, connect

from ..agent.conftest import PREFIX, Broker, Watcher, update_event

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keygen(tmp_path_factory.mktemp("keys"), "release")


def test_sign_checks_what_it_signs(key: tuple[Path, Path], tmp_path: Path, bundle_copy) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"not above the bundle's own 0\.0\.1"):
        sign_release(TINY, [key[0]], "0.0.1", "stable", tmp_path / "a")
    with pytest.raises(ConfigError, match="must be positive"):
        sign_release(TINY, [key[0]], "0.0.2", "stable", tmp_path / "b", expires_days=0)
    wrong = bundle_copy(lambda d: [g.update(label="positive" if g["label"] == "negative"
                                            else "negative") for g in d["golden"]])
    with pytest.raises(SelfTestError):
        sign_release(wrong, [key[0]], "0.0.2", "stable", tmp_path / "c")
    assert not (tmp_path / "c" / "manifest.json").exists()
    forced = sign_release(TINY, [key[0]], "0.0.1", "stable", tmp_path / "d", force=True)
    assert forced["signed"]["version"] == "0.0.1"


def _retained(broker: Broker, topic: str) -> list[bytes]:
    got: list[bytes] = []
    client = connect(BrokerSettings(broker.url))
    client.on_message = lambda c, u, msg: got.append(msg.payload)
    client.subscribe(topic, qos=1)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    return [p for p in got if p]


def test_unpublish_clears_the_release_and_forget_clears_a_device(
        broker: Broker, key: tuple[Path, Path], tmp_path: Path) -> None:
    sign_release(TINY, [key[0]], "0.0.2", "stable", tmp_path / "rel", chunk_size=4096)
    settings, topics = BrokerSettings(broker.url), Topics(PREFIX)
    publish_release(settings, tmp_path / "rel", PREFIX)
    assert _retained(broker, topics.manifest("stable"))
    assert _retained(broker, topics.chunks("stable", "0.0.2") + "/+")
    done = unpublish_release(settings, tmp_path / "rel", PREFIX)
    assert done["manifest_cleared"] and done["chunks_cleared"] >= 1
    assert not _retained(broker, topics.manifest("stable"))
    assert not _retained(broker, topics.chunks("stable", "0.0.2") + "/+")
    client = connect(settings)
    client.publish(f"{PREFIX}/devices/gone/status", json.dumps({"state": "offline"}).encode(),
                   qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    assert [r["device"] for r in fleet_status(settings, PREFIX, wait=0.5)] == ["gone"]
    forget_device(settings, "gone", PREFIX)
    assert fleet_status(settings, PREFIX, wait=0.5) == []


def test_status_shows_the_last_update_event_and_reason(
        broker: Broker, watcher: Watcher, run_agent, key: tuple[Path, Path],  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    from edge_sentiment.fleet.ops import trust_file

    trust_file([key[1]], 1, trust)
    run_agent("pi-7", "stable", trust)
    sign_release(TINY, [key[0]], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384,
                 arches=["riscv64"])
    publish_release(BrokerSettings(broker.url), tmp_path / "rel", PREFIX)
    watcher.wait_for(update_event("pi-7", "rejected"))
    deadline = time.time() + 10
    while time.time() < deadline:
        rows = fleet_status(BrokerSettings(broker.url), PREFIX, wait=0.5)
        if rows and rows[0]["last_update"] == "rejected":
            break
    assert (rows[0]["last_update"], rows[0]["last_reason"]) == ("rejected", "incompatible_target")

"""Outbox, config, releases, trust rotation and slots without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sentiment.agent.config import load_config
from edge_sentiment.agent.outbox import Outbox
from edge_sentiment.errors import ConfigError, UpdateError
from edge_sentiment.fleet.ops import keygen, sign_release, trust_file
from edge_sentiment.protocol import Release, broker_address, parse_trust, rotate_trust, verify_signatures
from edge_sentiment.slots import SlotStore

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def test_outbox_bounded_and_sequence_survives_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "q.sqlite", max_messages=10)
    seqs = [box.put("t", lambda s, e: {"seq": s, "evicted": e}) for _ in range(15)]
    assert seqs == sorted(seqs) and len(box) == 10
    msgs = box.peek(0, 100)
    evicted = [json.loads(m.payload)["evicted"] for m in msgs]
    assert sum(evicted) == 5 and msgs[0].seq == 6
    box.ack(msgs[0].seq)
    box.close()
    again = Outbox(tmp_path / "q.sqlite", max_messages=10)
    assert len(again) == 9
    assert again.put("t", lambda s, e: {"seq": s}) == 16, "sequence never goes back"


def test_config_rejects_unknown_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('broker = "mqtt://localhost"\ndevice_id = "a"\nstate_dir = "/tmp/x"\ncolour = 1\n')
    with pytest.raises(ConfigError, match="colour"):
        load_config(path, {})
    path.write_text('broker = "http://x"\ndevice_id = "a/b"\nstate_dir = "/tmp/x"\n')
    with pytest.raises(ConfigError, match=r"broker.*device_id"):
        load_config(path, {})
    path.write_text('broker = "mqtt://a"\ndevice_id = "a"\nstate_dir = "/tmp/x"\n'
                    'metrics_interval_s = -1\n')
    with pytest.raises(ConfigError, match="metrics_interval_s"):
        load_config(path, {})


def test_flags_override_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('broker = "mqtts://b:8883"\ndevice_id = "file"\nstate_dir = "/tmp/x"\n')
    cfg = load_config(path, {"device_id": "flag", "channel": None})
    assert (cfg.device_id, cfg.channel) == ("flag", "stable")
    assert broker_address(cfg.broker) == ("b", 8883, True)
    assert broker_address("mqtt://[::1]") == ("::1", 1883, False)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml", {})


def test_signing_threshold_and_rotation(tmp_path: Path) -> None:
    k = {n: keygen(tmp_path, n) for n in ("a", "b", "c")}
    trust_file([k["a"][1], k["b"][1]], 2, tmp_path / "t.json")
    trust = parse_trust(json.loads((tmp_path / "t.json").read_text()))
    doc = sign_release(TINY, [k["a"][0], k["b"][0]], "0.0.2", "stable", tmp_path / "r")
    assert Release.from_signed(verify_signatures(doc, trust)).version == "0.0.2"
    one = sign_release(TINY, [k["a"][0]], "0.0.2", "stable", tmp_path / "r1")
    with pytest.raises(UpdateError, match="1 valid signature"):
        verify_signatures(one, trust)
    dup = {"signed": one["signed"], "signatures": one["signatures"] * 2}
    with pytest.raises(UpdateError) as exc:
        verify_signatures(dup, trust)
    assert exc.value.reason == "below_threshold", "one key signing twice counts once"
    # rotation: a new trust (c only) signed by a threshold of the current keys
    trust_file([k["c"][1]], 1, tmp_path / "t2.json", version=2, signing_keys=[k["a"][0], k["b"][0]])
    new = rotate_trust(trust, json.loads((tmp_path / "t2.json").read_text()))
    assert list(new.keys) and new.version == 2
    trust_file([k["c"][1]], 1, tmp_path / "t3.json", version=2, signing_keys=[k["c"][0]])
    with pytest.raises(UpdateError, match="untrusted"):
        rotate_trust(trust, json.loads((tmp_path / "t3.json").read_text()))
    with pytest.raises(UpdateError) as exc2:
        rotate_trust(new, json.loads((tmp_path / "t2.json").read_text()))
    assert exc2.value.reason in ("unknown_key", "trust_rollback")


def test_slots_switch_and_survive_dangling_link(tmp_path: Path) -> None:
    store = SlotStore(tmp_path)
    store.ensure(TINY)
    assert store.current().name == "a" and store.idle_slot().name == "b"
    (tmp_path / "current").unlink()
    (tmp_path / "current").symlink_to("slots/nowhere")
    store.ensure(TINY)
    assert store.current().name == "a" and store.current_version() == "0.0.1"

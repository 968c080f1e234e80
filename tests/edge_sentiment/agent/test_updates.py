"""Signed updates end to end against a real Mosquitto, and every attack case."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment.bundle import sha256_file
from edge_sentiment.fleet.ops import keygen, publish_release, sign_release, trust_file
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.protocol.release import chunk_hashes
from edge_sentiment.protocol.signing import read_key, sign_document

from .conftest import PREFIX, Broker, Watcher, update_event

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("k1", "k2", "rogue"):
        out[name + ".key"], out[name + ".pub"] = keygen(d, name)
    out["trust"] = d / "trust.json"
    trust_file([out["k1.pub"]], 1, out["trust"])
    out["trust2"] = d / "trust2.json"
    trust_file([out["k1.pub"], out["k2.pub"]], 2, out["trust2"])
    return out


def _publish(broker: Broker, release: Path) -> None:
    publish_release(BrokerSettings(broker.url), release, PREFIX)


def _resign(release: Path, keys: list[Path], tar_bytes: bytes, **overrides: Any) -> Path:
    """Replace the release's tar and re-sign a manifest that describes it faithfully."""
    (release / "bundle.tar").write_bytes(tar_bytes)
    doc = json.loads((release / "manifest.json").read_text())
    signed = doc["signed"]
    signed.update(bundle_sha256=sha256_file(release / "bundle.tar"), bundle_size=len(tar_bytes),
                  chunks=chunk_hashes(release / "bundle.tar", signed["chunk_size"]), **overrides)
    (release / "manifest.json").write_text(json.dumps(sign_document(signed, [read_key(k) for k in keys])))
    return release


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _bundle_variant(tmp: Path, edit: Callable[[Path], None]) -> Path:
    root = tmp / "variant"
    shutil.copytree(TINY, root)
    edit(root)
    data = json.loads((root / "manifest.json").read_text())
    for art in data["artifacts"]:
        art["sha256"], art["bytes"] = sha256_file(root / art["file"]), (root / art["file"]).stat().st_size
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_release_installs_and_goes_active(broker: Broker, watcher: Watcher, run_agent,  # type: ignore[no-untyped-def]
                                          keys: dict[str, Path], tmp_path: Path) -> None:
    agent = run_agent("dev1", "stable", keys["trust"])
    sign_release(TINY, [keys["k1.key"]], "0.0.2", "stable", tmp_path / "rel", chunk_size=16384)
    _publish(broker, tmp_path / "rel")
    active = watcher.wait_for(update_event("dev1", "active"))
    assert active["version"] == "0.0.2"
    events = [e["event"] for e in watcher.events("dev1")]
    assert events[:4] == ["downloading", "verified", "installed", "active"]
    watcher.wait_for(lambda t, b: t.endswith("dev1/status") and b.get("model_version") == "0.0.2")
    assert agent.clf.info.bundle["version"] == "0.0.2", "the running classifier hot-swapped"
    assert agent.slots.current_version() == "0.0.2"
    assert json.loads((agent.cfg.state_dir / "state.json").read_text())["highest_version"] == "0.0.2"


def _sign(keys: dict[str, Path], tmp: Path, channel: str, version: str = "0.0.5",
          key: str = "k1.key", bundle: Path = TINY, **kw: Any) -> Path:
    sign_release(bundle, [keys[key]], version, channel, tmp / "rel", chunk_size=16384,
                 force=True, **kw)  # crafted attacks: fleet sign would refuse some
    return tmp / "rel"


CASES: dict[str, Callable[[dict[str, Path], Path], Path]] = {
    "bad_signature": lambda k, t: _tamper(_sign(k, t, "c")),
    "unknown_key": lambda k, t: _sign(k, t, "c", key="rogue.key"),
    "expired": lambda k, t: _sign(k, t, "c", expires_days=-1),
    "not_newer": lambda k, t: _sign(k, t, "c", version="0.0.1"),
    "incompatible_target": lambda k, t: _sign(k, t, "c", arches=["armv7l"]),
    "manifest_mismatch": lambda k, t: _resign(
        _sign(k, t, "c"), [k["k1.key"]], (_sign(k, t, "c") / "bundle.tar").read_bytes(),
        bundle_manifest_sha256="0" * 64),
    "unsafe_archive": lambda k, t: _resign(_sign(k, t, "c"), [k["k1.key"]], _tar(
        [(tarfile.TarInfo("../evil.txt"), b"")])),
}


def _tamper(release: Path) -> Path:
    """Change a signed field after signing: the known key's signature no longer verifies."""
    doc = json.loads((release / "manifest.json").read_text())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    (release / "manifest.json").write_text(json.dumps(doc))
    return release


def _old_version(keys: dict[str, Path], tmp: Path) -> Path:
    return _sign(keys, tmp, "c", version="0.0.0")


def _symlink_tar() -> bytes:
    link = tarfile.TarInfo("manifest.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return _tar([(link, b"")])


CASES["replayed_older"] = _old_version
CASES["symlink_member"] = lambda k, t: _resign(_sign(k, t, "c"), [k["k1.key"]], _symlink_tar())
REASONS = {"replayed_older": "not_newer", "symlink_member": "unsafe_archive"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected_release_keeps_model(case: str, broker: Broker, watcher: Watcher, run_agent,  # type: ignore[no-untyped-def]
                                      keys: dict[str, Path], tmp_path: Path) -> None:
    agent = run_agent("dev2", "c", keys["trust"])
    _publish(broker, CASES[case](keys, tmp_path))
    event = watcher.wait_for(update_event("dev2", "rejected"))
    assert event["reason"] == REASONS.get(case, case), event
    assert agent.clf.info.bundle["version"] == "0.0.1"
    assert agent.slots.current_version() == "0.0.1"


def test_signatures_below_threshold(broker: Broker, watcher: Watcher, run_agent,  # type: ignore[no-untyped-def]
                                    keys: dict[str, Path], tmp_path: Path) -> None:
    run_agent("dev3", "c", keys["trust2"])
    _publish(broker, _sign(keys, tmp_path, "c"))
    event = watcher.wait_for(update_event("dev3", "rejected"))
    assert event["reason"] == "below_threshold" and "1 valid signature(s) of 2" in event["detail"]


def test_oversized_release(broker: Broker, watcher: Watcher, run_agent,  # type: ignore[no-untyped-def]
                           keys: dict[str, Path], tmp_path: Path) -> None:
    run_agent("dev4", "c", keys["trust"], max_bundle_bytes=100_000)
    _publish(broker, _sign(keys, tmp_path, "c"))
    assert watcher.wait_for(update_event("dev4", "rejected"))["reason"] == "too_large"


@pytest.mark.parametrize("limit", [{"max_archive_members": 3}, {"max_unpacked_bytes": 50_000}])
def test_a_signed_release_over_the_unpack_limits_is_refused(  # type: ignore[no-untyped-def]
        limit: dict[str, int], broker: Broker, watcher: Watcher, run_agent,
        keys: dict[str, Path], tmp_path: Path) -> None:
    """The tiny bundle holds 5+ files and about 200 kB: a validly signed release that would
    unpack past the agent's configured limits is refused before a byte is written."""
    device = f"lim{len(limit)}{next(iter(limit))[4]}"
    run_agent(device, "c", keys["trust"], **limit)
    _publish(broker, _sign(keys, tmp_path, "c"))
    event = watcher.wait_for(update_event(device, "rejected"))
    assert event["reason"] == "unsafe_archive", event
    assert any(word in event["detail"] for word in ("members", "unpacks to", "too large"))


@pytest.mark.parametrize("kind", ["flip", "truncate", "foreign", "stray"])
def test_bad_chunks_are_ignored_and_the_signed_ones_still_install(  # type: ignore[no-untyped-def]
        kind: str, broker: Broker, watcher: Watcher, run_agent, keys: dict[str, Path],
        tmp_path: Path) -> None:
    """A forged, truncated or foreign chunk, or a message on a stray chunk topic, is counted and
    dropped; the download waits for the signed chunk instead of giving the release up (on the
    old code each of these rejected the release until a restart)."""
    agent = run_agent("dev5", "c", keys["trust"])
    rel = _sign(keys, tmp_path, "c")
    good = (rel / "bundle.tar").read_bytes()
    data = bytearray(good)
    if kind == "flip":
        data[100] ^= 0xFF
    elif kind == "truncate":
        data = data[:16384 + 10]
    elif kind == "foreign":  # the first chunk of another release in this release's topic
        other = sign_release(_bundle_variant(tmp_path, lambda r: (r / "MODEL_CARD.md").write_text("x")),
                             [keys["k1.key"]], "0.0.5", "c", tmp_path / "other", chunk_size=16384)
        assert other
        data[:16384] = (tmp_path / "other" / "bundle.tar").read_bytes()[:16384]
    base = f"{PREFIX}/updates/c/releases/0.0.5/chunks"
    if kind == "stray":  # only the first chunk now: the download waits for the rest
        data = data[:16384]
    bad = bytes(data) + good[len(data):] if kind not in ("truncate", "stray") else bytes(data)
    (rel / "bundle.tar").write_bytes(bad)
    _publish(broker, rel)
    watcher.wait_for(update_event("dev5", "downloading"))
    if kind == "stray":
        _raw_publish(broker, [(f"{base}/99999", b"junk"), (f"{base}/foo", b"junk"),
                              (f"{base}/-1", b"junk")])
    _wait(lambda: agent.updater.ignored_chunks >= 1)
    assert agent.slots.current_version() == "0.0.1"
    (rel / "bundle.tar").write_bytes(good)  # the signed chunks come again (a re-publish)
    _publish(broker, rel)
    assert watcher.wait_for(update_event("dev5", "active"))["version"] == "0.0.5"
    assert not [b for t, b in watcher.messages if t.endswith("/dev5/update")
                and isinstance(b, dict) and b.get("event") == "rejected"]
    assert agent.faults()["ignored_chunks"] >= 1


def _raw_publish(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    from edge_sentiment.protocol import connect
    client = connect(BrokerSettings(broker.url))
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    import time
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("edit, reason", [
    (lambda r: [(r / f).write_bytes(b"\0garbage" * 100) for f in
                ("model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite")], "load_failed"),
    (lambda r: (r / "manifest.json").write_text((r / "manifest.json").read_text()
                                                .replace('"label": "positive"', '"label": "negative"')),
     "self_test_failed"),
])
def test_broken_model_rolls_back(edit: Callable[[Path], None], reason: str, broker: Broker,  # type: ignore[no-untyped-def]
                                 watcher: Watcher, run_agent, keys: dict[str, Path],
                                 tmp_path: Path) -> None:
    agent = run_agent("dev6", "c", keys["trust"])
    before = agent.slots.current()
    _publish(broker, _sign(keys, tmp_path, "c", bundle=_bundle_variant(tmp_path, edit)))
    event = watcher.wait_for(update_event("dev6", "rolled_back"))
    assert event["reason"] == reason and event["current"] == "0.0.1"
    assert agent.slots.current() == before
    assert agent.clf.classify("still serving").label in agent.clf.labels

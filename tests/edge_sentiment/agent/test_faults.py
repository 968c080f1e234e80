"""Faults the agent must survive, injected for real where this machine allows: a corrupt
outbox, a full disk (a 1 MB tmpfs in a private mount namespace), a failing resume, a release
refused before its trust arrived, pre-releases, a lowered floor and systemd's watchdog."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment.agent import AgentConfig
from edge_sentiment.agent.outbox import Outbox
from edge_sentiment.agent.updater import Updater
from edge_sentiment.agent.watchdog import Notifier
from edge_sentiment.errors import ManifestError, UpdateError
from edge_sentiment.fleet.ops import keygen, sign_release, trust_file
from edge_sentiment.manifest import parse_semver, semver_key
from edge_sentiment.protocol import strict_loads
from edge_sentiment.slots import SlotStore, write_json_atomic

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.subs: list[str] = []

    def report(self, event: str, detail: dict[str, Any]) -> None:
        self.events.append((event, detail))

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


def _updater(tmp: Path, trust: Path, rec: Recorder) -> Updater:
    state = tmp / "state"
    SlotStore(state).ensure(TINY)
    cfg = AgentConfig(broker="mqtt://127.0.0.1:1", device_id="d1", state_dir=state, trust=trust,
                      channel="c", runtime="onnx")
    return Updater(cfg, SlotStore(state), rec.report, rec.subs.append, lambda t: None,
                   lambda clf: None, "generic-x86_64")


def test_semver_precedence_and_ascii_digits() -> None:
    order = ["0.0.1", "0.0.2-alpha", "0.0.2-alpha.1", "0.0.2-alpha.beta", "0.0.2-beta.2",
             "0.0.2-beta.11", "0.0.2-rc1", "0.0.2", "0.1.0", "10.0.0"]
    assert sorted(order, key=semver_key) == order
    assert semver_key("1.0.0+build.5") == semver_key("1.0.0")
    for bad in ("1٠.0.0", "01.0.0", "1.0", "1.0.0-", "v1.0.0"):
        with pytest.raises(ManifestError):
            parse_semver(bad)


@pytest.mark.parametrize(("payload", "needle"), [
    (b'{"a": 1, "a": 2}', "duplicate keys"), (b'{"a": NaN}', "finite"),
    (b'{"a": Infinity}', "finite"), (b"[" * 40 + b"]" * 40, "deeper"),
    (b"x" * (2 << 20), "bytes, over"),
])
def test_strict_documents(payload: bytes, needle: str) -> None:
    with pytest.raises(UpdateError, match=needle) as err:
        strict_loads(payload)
    assert err.value.reason == "malformed"


def test_a_release_refused_before_its_trust_is_rechecked_after_rotation(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    old_key, old_pub = keygen(keys, "old")
    new_key, new_pub = keygen(keys, "new")
    trust_file([old_pub], 1, tmp_path / "trust.json")
    rotated = trust_file([new_pub], 1, tmp_path / "trust2.json", version=2, signing_keys=[old_key])
    sign_release(TINY, [new_key], "0.0.7", "c", tmp_path / "rel", chunk_size=1 << 20)
    rec = Recorder()
    up = _updater(tmp_path, tmp_path / "trust.json", rec)
    payload = (tmp_path / "rel" / "manifest.json").read_bytes()
    up.on_manifest(payload)  # the release came first: its key is not trusted yet
    assert rec.events[-1][1]["reason"] == "unknown_key"
    up.on_manifest(payload)  # a transient verdict is not remembered: checked again
    assert rec.names().count("rejected") == 2
    up.on_trust(json.dumps(rotated).encode())
    assert rec.names()[-2:] == ["trust_rotated", "downloading"]
    assert up.release is not None and up.release.version == "0.0.7"


def test_a_resume_that_fails_is_abandoned_and_reported(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key, pub = keygen(keys, "k")
    trust_file([pub], 1, tmp_path / "trust.json")
    rec = Recorder()
    up = _updater(tmp_path, tmp_path / "trust.json", rec)
    sign_release(TINY, [key], "0.0.7", "c", tmp_path / "rel", chunk_size=1 << 20)
    up.dir.mkdir(parents=True)
    shutil.copy(tmp_path / "rel" / "manifest.json", up.dir / "release.json")
    (up.dir / "have.json").write_text("[0]")
    os.symlink("bundle.part", up.dir / "bundle.part")  # a loop: reading it raises ELOOP
    up.resume()  # must not raise (the old code crash-looped the agent at every start)
    assert rec.events[-1][0] == "rejected" and rec.events[-1][1]["reason"] == "resume_failed"
    assert not up.dir.exists() and up.release is None


def test_the_floor_never_drops_below_the_current_slot(tmp_path: Path) -> None:
    slots = SlotStore(tmp_path / "s")
    slots.ensure(TINY)
    current = slots.current_version()
    write_json_atomic(slots.state_file, {"highest_version": "0.0.0"})  # stale record
    assert slots.installed_version() == current
    slots.state_file.write_text("{half")  # torn write
    assert slots.installed_version() == current
    write_json_atomic(slots.state_file, {"highest_version": "9.0.0"})
    assert slots.installed_version() == "9.0.0"


def test_the_floor_is_durable_before_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    slots = SlotStore(tmp_path / "s")
    slots.ensure(TINY)
    newer = tmp_path / "newer"
    shutil.copytree(TINY, newer)
    data = json.loads((newer / "manifest.json").read_text())
    data["version"] = "0.0.9"
    (newer / "manifest.json").write_text(json.dumps(data))
    idle = slots.idle_slot()
    shutil.copytree(newer, idle)

    def killed(target: Path) -> None:
        raise KeyboardInterrupt  # stands in for kill -9 at the switch

    monkeypatch.setattr(slots, "_switch", killed)
    with pytest.raises(KeyboardInterrupt):
        slots.activate(idle, {"runtime": "onnx"})
    assert json.loads(slots.state_file.read_text())["highest_version"] == "0.0.9"


def test_a_corrupt_outbox_is_moved_aside_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    box = Outbox(path, 100)
    assert "moved to outbox.sqlite.corrupt-" in box.reset_reason
    assert box.put("t", lambda s, e: {"n": 1}) > 0 and len(box) == 1
    box.close()
    assert list(tmp_path.glob("outbox.sqlite.corrupt-*"))
    assert Outbox(path, 100).reset_reason == ""  # the new queue is fine: reported once


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare for a private tmpfs")
def test_a_full_disk_stops_the_outbox_growing_and_it_recovers(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(Path(__file__).parents[3])!r})
        from edge_sentiment.agent.outbox import Outbox
        d = sys.argv[1]
        box = Outbox(__import__("pathlib").Path(d) / "outbox.sqlite", 100000)
        filler = open(os.path.join(d, "filler"), "wb", buffering=0)
        try:
            while True:
                filler.write(b"x" * 4096)
        except OSError:
            pass
        seqs = [box.put("t", lambda s, e: {{"pad": "y" * 2000}}) for _ in range(300)]
        full = {{"lost": box.lost, "stored": len(box)}}
        filler.close(); os.remove(os.path.join(d, "filler"))
        after = box.put("t", lambda s, e: {{"ok": 1}})
        print(json.dumps({{**full, "after": after, "lost_after": box.lost}}))
    """)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "fill.py").write_text(script)
    done = subprocess.run(["unshare", "-m", "sh", "-c",
                           f"mount -t tmpfs -o size=1m tmpfs {mnt} && {sys.executable} "
                           f"{tmp_path / 'fill.py'} {mnt}"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["lost"] > 0  # some messages could not be stored: counted, no exception
    assert result["after"] > 0 and result["lost_after"] == result["lost"]  # recovered


def test_watchdog_speaks_the_notify_protocol(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(2)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
        n.ready()
        assert server.recv(64) == b"READY=1"
        n.ping()
        assert server.recv(64) == b"WATCHDOG=1"
        assert n.interval == 1.0
    assert not Notifier({}).send("READY=1")  # outside systemd: a no-op

"""Soak: SIGKILL a real agent at N points of a whole update, mark-good included.

    python scripts/soak_kill_agent.py --n 200 --out docs/soak_kill_agent.json

A local Mosquitto holds a signed 0.0.2 release (retained). Each round starts
``edge-sentiment agent`` on a fresh state folder seeded with the tiny 0.0.1 bundle; the agent
downloads, verifies, unpacks, activates, runs its health trial and marks the slot good (the
trial times out at 0.5 s, with no traffic). Round i waits for the agent to report step
``STEPS[i % 5]`` (start, downloading, verified, installed, active) and kills it with SIGKILL a
random moment later (``DELAY``: up to 1 s after start or active, which the trial and
mark-good follow; 30-100 ms in the short download and install steps), so kill points fall in
every step whatever the machine's speed. After each kill the invariants are checked on the
files alone: ``current`` loads and passes its self-test; the anti-rollback floor is not below
the current version; a slot marked good is the one running or the floor. Every
``--recover-every``-th round then starts the agent again and waits for it to end on 0.0.2
marked good. The report counts the step each kill landed after (the last event the agent
sent before it died).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from local_broker import start_mosquitto  # scripts/, this file's folder

ROOT = Path(__file__).parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny_bundle"
PREFIX = "edge-sentiment"
STEPS = ("start", "downloading", "verified", "installed", "active", "healthy")
DELAY = {"start": 1.0, "downloading": 0.03, "verified": 0.03, "installed": 0.1, "active": 1.0}


class Events:
    """Every update event on the broker, by device."""

    def __init__(self, url: str) -> None:
        from edge_sentiment.protocol import BrokerSettings, connect

        self.seen: dict[str, list[str]] = {}
        self.client = connect(BrokerSettings(url))
        self.client.on_message = self._on
        self.client.subscribe(f"{PREFIX}/devices/+/update", qos=1)

    def _on(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        self.seen.setdefault(msg.topic.split("/")[-2], []).append(str(body.get("event")))

    def last_step(self, device: str) -> str:
        events = [e for e in self.seen.get(device, []) if e in STEPS]
        return events[-1] if events else "start"


def _agent(url: str, state: Path, trust: Path, device: str, conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edge_sentiment", "agent", "--config", str(conf),
                             "--broker", url, "--device-id", device, "--state-dir", str(state),
                             "--trust", str(trust), "--metrics-interval", "0.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check(state: Path) -> str | None:
    """The invariants on the files alone; None when they hold, else what broke."""
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.manifest import semver_key
    from edge_sentiment.slots import SlotStore

    slots = SlotStore(state)
    try:
        clf = SentimentClassifier.load(slots.current_link, runtime="onnx")
    except Exception as exc:
        return f"current does not load: {exc}"
    running = clf.info.bundle["version"]
    floor = slots.installed_version()
    if semver_key(floor) < semver_key(running):
        return f"floor {floor} below the running {running}"
    good = slots.state().get("good_version")
    if good is not None and good not in (running, floor):
        return f"good_version {good} is neither running ({running}) nor the floor ({floor})"
    return None


def _until(events: Events, device: str, step: str, seconds: float) -> None:
    """Wait until the device has reported ``step`` (or a later one)."""
    deadline = time.time() + seconds
    while STEPS.index(events.last_step(device)) < STEPS.index(step) and time.time() < deadline:
        time.sleep(0.005)


def _wait_good(state: Path, seconds: float) -> bool:
    from edge_sentiment.slots import SlotStore

    deadline = time.time() + seconds
    while time.time() < deadline:
        if SlotStore(state).state().get("good_version") == "0.0.2":
            return True
        time.sleep(0.2)
    return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--recover-every", type=int, default=10)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from edge_sentiment.fleet.ops import keygen, publish_release, sign_release, trust_file
    from edge_sentiment.protocol import BrokerSettings
    from edge_sentiment.slots import SlotStore

    work = Path(tempfile.mkdtemp(prefix="soak-agent-"))
    broker, url = start_mosquitto(work)
    key, pub = keygen(work / "keys", "k")
    trust = work / "trust.json"
    trust_file([pub], 1, trust)
    sign_release(TINY, [key], "0.0.2", "stable", work / "rel", chunk_size=4096)
    publish_release(BrokerSettings(url), work / "rel", PREFIX)
    conf = work / "agent.toml"
    conf.write_text("health_timeout_s = 0.5\nhealth_min_seconds = 0\nruntime = \"onnx\"\n")
    events = Events(url)
    rng = random.Random(args.seed)
    try:
        probe = work / "probe"
        SlotStore(probe).ensure(TINY)
        t0 = time.time()
        proc = _agent(url, probe, trust, "probe", conf)
        if not _wait_good(probe, 60):
            raise SystemExit("the probe agent never marked 0.0.2 good")
        full = time.time() - t0
        proc.terminate()
        proc.wait(10)
        steps: Counter[str] = Counter()
        broken: list[str] = []
        recovered = 0
        for i in range(args.n):
            state, device = work / f"s{i}", f"soak-{i}"
            SlotStore(state).ensure(TINY)
            proc = _agent(url, state, trust, device, conf)
            target = STEPS[i % (len(STEPS) - 1)]  # start .. active, in turn
            _until(events, device, target, 60)
            # then a random delay: up to the rest of the path from that step (the trial and
            # mark-good follow "active" within the 0.5 s trial timeout)
            time.sleep(rng.uniform(0, DELAY[target]))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            time.sleep(0.05)
            steps[events.last_step(device)] += 1
            problem = check(state)
            if problem:
                broken.append(f"round {i}: {problem}")
            if args.recover_every and i % args.recover_every == 0:
                again = _agent(url, state, trust, device, conf)
                if _wait_good(state, 60) and check(state) is None:
                    recovered += 1
                else:
                    broken.append(f"round {i}: no recovery to 0.0.2 marked good")
                again.terminate()
                again.wait(10)
        result = {"rounds": args.n, "path_seconds": round(full, 2),
                  "killed_after": dict(sorted(steps.items(), key=lambda kv: STEPS.index(kv[0]))),
                  "recovery_rounds": len(range(0, args.n, args.recover_every or args.n + 1)),
                  "recovered": recovered, "broken": broken, "ok": not broken}
    finally:
        events.client.disconnect()
        events.client.loop_stop()
        broker.terminate()
        broker.wait(10)
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

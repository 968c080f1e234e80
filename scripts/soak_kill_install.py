"""Soak: kill -9 an install at N random points; after each, `current` must load.

    python scripts/soak_kill_install.py --n 200 --out docs/soak_kill_install.json

Each round copies a fresh state dir (seeded with the tiny bundle), starts a child that
unpacks, self-tests and activates a new release (the agent's install path), kills it with
SIGKILL after a random delay within the measured install time, then loads `current`.
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
from pathlib import Path

ROOT = Path(__file__).parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny_bundle"
CHILD = """
import sys
from pathlib import Path
from edge_sentiment.slots import SlotStore
store = SlotStore(Path(sys.argv[1]))
slot = store.unpack(Path(sys.argv[2]), sys.argv[3], "0.0.2", sys.argv[4])
store.activate(slot, {"runtime": "onnx"})
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.fleet.ops import keygen, sign_release
    from edge_sentiment.slots import SlotStore

    work = Path(tempfile.mkdtemp(prefix="soak-kill-"))
    key, _ = keygen(work / "keys", "k")
    signed = sign_release(TINY, [key], "0.0.2", "stable", work / "rel")["signed"]
    tar = work / "rel" / "bundle.tar"
    child = [sys.executable, "-c", CHILD, "", str(tar), signed["name"], signed["bundle_manifest_sha256"]]
    t0 = time.time()
    state = work / "probe"
    SlotStore(state).ensure(TINY)
    subprocess.run([*child[:3], str(state), *child[4:]], check=True)
    full = time.time() - t0
    rng = random.Random(1)
    outcomes = {"old": 0, "new": 0, "unloadable": 0}
    for i in range(args.n):
        state = work / f"s{i}"
        SlotStore(state).ensure(TINY)
        proc = subprocess.Popen([*child[:3], str(state), *child[4:]])
        time.sleep(rng.uniform(0, full))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            version = SentimentClassifier.load(SlotStore(state).current_link, runtime="onnx").info
            outcomes["new" if version.bundle["version"] == "0.0.2" else "old"] += 1
        except Exception as exc:
            outcomes["unloadable"] += 1
            print(f"round {i}: current does not load: {exc}", file=sys.stderr)
    result = {"rounds": args.n, "install_seconds": round(full, 3), **outcomes,
              "ok": outcomes["unloadable"] == 0}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

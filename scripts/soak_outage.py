"""Soak: stop the broker for a long outage while the agent makes one message per second.

    python scripts/soak_outage.py --outage-s 600 --out docs/soak_outage.json

Starts its own Mosquitto on a free loopback port, runs an in-process agent with a
1 s metrics interval, stops the broker for ``--outage-s``, restarts it, and counts
which per-device sequence numbers arrived. Lost = made but never received.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.edge_sentiment.agent.conftest import Watcher, make_broker  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outage-s", type=float, default=600)
    ap.add_argument("--before-s", type=float, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.agent import Agent, AgentConfig
    from edge_sentiment.slots import SlotStore

    work = Path(tempfile.mkdtemp(prefix="soak-outage-"))
    broker = make_broker(work)
    broker.start()
    store = SlotStore(work / "state")
    store.ensure(ROOT / "tests/fixtures/tiny_bundle")
    clf = SentimentClassifier.load(store.current_link, runtime="onnx")
    agent = Agent(clf, AgentConfig(broker=broker.url, device_id="soak", state_dir=work / "state",
                                   metrics_interval_s=1.0, reconnect_min_s=2.0,
                                   reconnect_max_s=4.0))
    agent.start()
    before = Watcher(broker)
    time.sleep(args.before_s)
    broker.stop()
    time.sleep(args.outage_s)
    queued = len(agent.outbox)
    broker.start()
    after = Watcher(broker)
    deadline = time.time() + 120
    while len(agent.outbox) > 2 and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    agent.stop()
    broker.stop()
    got = {b["seq"] for w in (before, after) for t, b in w.messages
           if t.startswith("edge-sentiment/devices/soak/") and isinstance(b, dict) and b["seq"] > 0}
    made = set(range(min(got), max(got) + 1))
    result = {"outage_s": args.outage_s, "rate_per_s": 1.0, "queued_at_reconnect": queued,
              "received": len(got), "made": len(made), "lost": len(made - got),
              "in_order": [b["seq"] for t, b in after.messages if t.endswith("/metrics")]
              == sorted(b["seq"] for t, b in after.messages if t.endswith("/metrics"))}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

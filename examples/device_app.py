"""An example device app: classify incoming texts and run the fleet agent in the same process.

    python examples/device_app.py --broker mqtt://127.0.0.1:1883 --device-id demo-1 \
        --state-dir /tmp/edge-demo --trust trust.json < texts.txt

Every line on stdin is classified; the agent reports the app's own predictions as metrics and
hot-swaps the model when a signed update arrives.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.slots import SlotStore


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--broker", required=True)
    p.add_argument("--device-id", required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--trust", type=Path)
    args = p.parse_args()
    slots = SlotStore(args.state_dir)
    slots.ensure()  # first run: the packaged default bundle becomes slot a
    clf = SentimentClassifier.load(slots.current_link)
    agent = Agent(clf, AgentConfig(broker=args.broker, device_id=args.device_id,
                                   state_dir=args.state_dir, trust=args.trust,
                                   metrics_interval_s=10))
    agent.start()
    try:
        for line in sys.stdin:
            if line.strip():
                pred = clf.classify(line.strip())
                print(f"{pred.label}\t{pred.score:.3f}\t{line.strip()}", flush=True)
    finally:
        agent.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

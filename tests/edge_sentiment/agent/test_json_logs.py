"""The agent under ``--log-format json``: one JSON record per stderr line, a ready record naming
broker, device, model and backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge_sentiment.logs import FIELDS
from edge_sentiment.slots import SlotStore
from tests.edge_sentiment.agent.conftest import Broker

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def test_agent_json_logs(broker: Broker, tmp_path: Path) -> None:
    state = tmp_path / "s"
    SlotStore(state).ensure(TINY)
    result = subprocess.run([sys.executable, "-m", "edge_sentiment", "--log-format", "json",
                             "agent", "--broker", broker.url, "--device-id", "dj",
                             "--state-dir", str(state), "--run-for", "2"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert all(set(d) <= set(FIELDS) for d in docs), docs
    ready = [d for d in docs if d.get("event") == "ready"]
    assert len(ready) == 1, docs
    assert ready[0]["broker"] == broker.url and ready[0]["device"] == "dj"
    assert ready[0]["model"] == "edge-sentiment-tiny 0.0.1"
    assert any(d["msg"].startswith("connected to") for d in docs), docs

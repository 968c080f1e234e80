"""Attack family: what one device can send the fleet side (sample uploads, update events,
rollout topics). Each is dropped or stored safely; none reaches the database as a raw error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment.fleet.samples import SampleDB, check_sample
from edge_sentiment.fleet.samples_cli import Collector


def _sample(**change: Any) -> bytes:
    body = {"schema": "edge-sentiment/sample/1", "seq": 1, "ts": 1.0, "kind": "feedback",
            "text": "the lid cracked on day two", "model_version": "2.1.0",
            "predicted": "negative", "scores": {"negative": 0.9, "neutral": 0.05,
                                                "positive": 0.05}, "label": "negative", **change}
    return json.dumps(body).encode()


@pytest.mark.parametrize("payload", [
    _sample(seq=2 ** 70),  # over SQLite's INTEGER: an OverflowError before the fix
    _sample(seq=-1),
    _sample(text="nul \x00 inside"),  # PostgreSQL text cannot hold NUL
    _sample(scores={"negative": "0.9"}),
    _sample(scores={"negative": 7.0}),
    _sample(scores={"negative": True}),
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,  # nesting past the recursion limit
    b"\xff\xfe not utf-8",
])
def test_a_hostile_sample_is_dropped(payload: bytes) -> None:
    assert check_sample(payload) is None


def test_the_collector_counts_and_survives(tmp_path: Path) -> None:
    collector = Collector(SampleDB(f"sqlite:///{tmp_path / 'f.db'}"))
    collector.on_message("edge-sentiment/samples/pi-1", _sample())
    collector.on_message("edge-sentiment/samples/pi-1", _sample())  # a redelivery
    collector.on_message("edge-sentiment/samples/pi-1", _sample(seq=2 ** 70))
    collector.on_message("edge-sentiment/samples/bad id!", _sample(seq=3))
    collector.db.engine.dispose()
    (tmp_path / "f.db").unlink()  # the database goes away under it
    (tmp_path / "f.db").mkdir()
    collector.on_message("edge-sentiment/samples/pi-1", _sample(seq=4))
    assert collector.counts == {"stored": 1, "duplicates": 1, "rejected": 2, "errors": 1}

"""The fleet's dataset: checked samples into SQLite and PostgreSQL, erasure per device, export
as convert data, and an agent's uploads collected through a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.agent import Agent, AgentConfig
from edge_sentiment.errors import InputError
from edge_sentiment.fleet.samples import SampleDB, check_sample, export, split_of
from edge_sentiment.fleet.samples_cli import start
from edge_sentiment.protocol import BrokerSettings
from edge_sentiment.slots import SlotStore
from edge_sentiment_convert.data import read_tsv
from tests.helpers import Postgres

from ..agent.conftest import PREFIX, Broker

TINY = Path(__file__).parents[2] / "fixtures" / "tiny_bundle"


def _sample(seq: int = 1, **change: Any) -> bytes:
    body = {"schema": "edge-sentiment/sample/1", "seq": seq, "ts": 1.0, "kind": "feedback",
            "text": "the jar cracked on day two", "model_version": "2.1.0",
            "predicted": "negative", "scores": {"negative": 0.8, "neutral": 0.1, "positive": 0.1},
            "label": "negative", **change}
    return json.dumps(body).encode()


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", _sample(schema="other/1"), _sample(kind="all"), _sample(text=""),
    _sample(text="x" * 5000), _sample(label="great"), _sample(predicted=None), _sample(seq="1"),
    _sample(seq=True), _sample(ts=float("inf")), _sample(scores={"happy": 1.0}),
    _sample(model_version=3)])
def test_a_bad_sample_is_rejected(payload: bytes) -> None:
    assert check_sample(payload) is None


def test_sqlite_stores_once_per_seq_and_forgets_a_device(tmp_path: Path) -> None:
    db = SampleDB(f"sqlite:///{tmp_path / 'f.sqlite'}")
    body = check_sample(_sample())
    assert body is not None
    assert db.add("pi-1", body) and not db.add("pi-1", body)  # a QoS 1 redelivery
    assert db.add("pi-2", body)
    assert db.forget("pi-1") == 1 and [r["device"] for r in db.rows()] == ["pi-2"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        pg = Postgres().start()
    except FileNotFoundError as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    yield pg
    pg.stop()


def test_postgresql_through_a_url(postgres: Postgres) -> None:
    db = SampleDB(postgres.url)
    for seq in (1, 2, 2):
        body = check_sample(_sample(seq, text=f"sample {seq} from the fleet"))
        assert body is not None
        db.add("pg-1", body)
    assert [r["seq"] for r in db.rows()] == [1, 2]
    assert db.forget("pg-1") == 2 and db.rows() == []


def test_a_bad_db_url_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "edge_sentiment", "fleet", "samples", "forget",
                           "pi-1", "--db", "nosuchdialect://x"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_export_makes_convert_data(tmp_path: Path) -> None:
    rows = [{"text": "works  great\tno complaints", "label": "positive"},
            {"text": "works great no complaints", "label": "positive"},  # a duplicate
            {"text": "stopped after a week", "label": "negative"},
            {"text": "it is fine", "label": "neutral"}, {"text": "it is fine", "label": "positive"},
            {"text": "arrived on tuesday", "label": None}]
    with pytest.raises(InputError, match="split of 2 labelled texts would be empty"):
        export(rows, tmp_path)
    more = [{"text": f"filler review {i}", "label": "neutral"} for i in range(60)]
    counts = export(rows + more, tmp_path)
    assert counts["conflicts_dropped"] == 1 and counts["duplicates_merged"] == 1
    assert sum(counts["splits"].values()) == 62 and counts["unlabeled"] == 1
    assert min(counts["splits"].values()) > 0
    read = {}
    for split in ("train", "dev", "test"):
        for ex in read_tsv(tmp_path / "fleet" / f"{split}.tsv", labeled=True, source="fleet"):
            read[ex.text] = (split, ex.label)
            assert split_of(ex.text) == split
    assert read["works great no complaints"] == (split_of("works great no complaints"), "positive")
    assert read["stopped after a week"] == (split_of("stopped after a week"), "negative")
    assert "it is fine" not in read and len(read) == 62
    plain = read_tsv(tmp_path / "unlabeled" / "unlabeled.tsv", labeled=False, source="unlabeled")
    assert [e.text for e in plain] == ["arrived on tuesday"]


def test_collect_an_agents_uploads_then_export(broker: Broker, tmp_path: Path) -> None:
    state = tmp_path / "s"
    SlotStore(state).ensure(TINY)
    clf = SentimentClassifier.load(state / "current", runtime="onnx")
    agent = Agent(clf, AgentConfig(broker=broker.url, device_id="col-1", state_dir=state,
                                   runtime="onnx", metrics_interval_s=0.3, capture=True,
                                   upload_samples=True, capture_low_confidence_rate=0.0,
                                   alert_psi=100.0))  # feedback samples only
    client, collector = start(BrokerSettings(broker.url), PREFIX, f"sqlite:///{tmp_path / 'f.db'}")
    agent.start()
    try:
        labels = ["negative", "neutral", "positive"]
        for i, pred in enumerate(clf.classify([f"review number {i} of the kettle, call 555-010-9999"
                                               for i in range(30)])):
            agent.feedback(pred.id, labels[i % 3])
        for _ in range(100):
            if collector.counts["stored"] >= 30:
                break
            __import__("time").sleep(0.1)
    finally:
        agent.stop()
        client.disconnect()
        client.loop_stop()
    assert collector.counts == {"stored": 30, "duplicates": 0, "rejected": 0, "errors": 0}
    rows = SampleDB(f"sqlite:///{tmp_path / 'f.db'}").rows()
    assert {r["device"] for r in rows} == {"col-1"} and all("[phone]" in r["text"] for r in rows)
    counts = export(rows, tmp_path / "data")
    assert sum(counts["splits"].values()) == 30 and min(counts["splits"].values()) > 0

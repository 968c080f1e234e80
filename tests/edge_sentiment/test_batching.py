"""Length-aware batching: chunks by padded-token budget, results in input order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.backends.onnx import OnnxBackend
from edge_sentiment.batching import length_chunks
from edge_sentiment.errors import BackendError


def test_chunks_sort_by_length_and_respect_both_limits() -> None:
    lengths = [50, 3, 40, 3, 200, 10, 10, 10]
    chunks = length_chunks(lengths, max_batch=3, token_budget=60)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    for c in chunks:
        assert len(c) <= 3
        assert len(c) == 1 or len(c) * max(lengths[i] for i in c) <= 60
    flat = [lengths[i] for c in chunks for i in c]
    assert flat == sorted(flat)
    assert [4] in chunks  # longer than the budget: alone
    assert length_chunks([], 8) == []


def test_classify_keeps_input_order(tiny_bundle: Path) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime="onnx")
    texts = ["great value " * k if k % 2 else "awful, broken " * k for k in range(1, 40)]
    batched = clf.classify(texts)
    for text, pred in zip(texts, batched):
        alone = clf.classify(text)
        assert pred.label == alone.label
        assert abs(pred.scores["positive"] - alone.scores["positive"]) < 0.05


def _texts() -> list[str]:
    return [("great value " if k % 2 else "awful, broken ") * (1 + k % 30) for k in range(200)]


def test_chunks_run_side_by_side_with_the_same_results(tiny_bundle: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    real = OnnxBackend.run_side_by_side

    def run(self: OnnxBackend, ids: Any, mask: Any) -> Any:
        seen.add(threading.current_thread().name)
        time.sleep(0.002)  # long enough for the second worker to pick up a chunk
        return real(self, ids, mask)

    clf1 = SentimentClassifier.load(tiny_bundle, runtime="onnx", threads=1)
    one = clf1.classify(_texts())
    monkeypatch.setattr(OnnxBackend, "run_side_by_side", run)
    two = SentimentClassifier.load(tiny_bundle, runtime="onnx", threads=2)
    assert two.info.threads == 2
    got = two.classify(_texts())
    assert [(p.label, p.scores) for p in got] == [(p.label, p.scores) for p in one]
    assert len(seen) == 2 and all(n.startswith("edge-sentiment") for n in seen), seen
    seen.clear()
    assert two.classify(_texts()[5]).scores == clf1.classify(_texts()[5]).scores
    assert not seen  # one text: one run on the classifier's own session, not side by side


def test_a_failing_chunk_raises_its_own_error(tiny_bundle: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clf = SentimentClassifier.load(tiny_bundle, runtime="onnx", threads=2)
    calls = iter(range(1000))

    def run(self: OnnxBackend, ids: Any, mask: Any) -> Any:
        if next(calls) == 3:
            raise BackendError("onnxruntime run failed: injected")
        return np.zeros((ids.shape[0], 3), dtype=np.float32)

    monkeypatch.setattr(OnnxBackend, "run_side_by_side", run)
    with pytest.raises(BackendError, match="injected"):
        clf.classify(_texts())
    assert clf.metrics.snapshot()["errors"] == 1

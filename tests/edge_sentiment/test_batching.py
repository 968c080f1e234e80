"""Length-aware batching: chunks by padded-token budget, results in input order."""

from __future__ import annotations

from pathlib import Path

from edge_sentiment import SentimentClassifier
from edge_sentiment.batching import length_chunks


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

"""The packaged default bundle's TFLite student gives a text the same label and scores alone and
in a batch (one signature per length, no per-call activation scales).

Its ONNX student (2.0.0) is dynamic int8: one activation scale per call, so 1 of 160 fixture
texts changes label between a one-text call and a 64-text call (largest score difference
0.025). A static int8 default (``onnx_quant = "static"``) passes this check on ONNX too; add
"onnx" to the runtimes when one ships."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.evaluate import batch_consistency, read_labeled_tsv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
SPLITS = ("reviews/dev.tsv", "reviews/test.tsv", "sst2/dev.tsv")


def fixture_texts() -> list[str]:
    return [t for split in SPLITS for t in read_labeled_tsv(FIXTURES / split)[0]]


@pytest.mark.parametrize("runtime", ["tflite"])
def test_default_bundle_labels_alone_as_in_a_batch(runtime: str) -> None:
    clf = SentimentClassifier.load(runtime=runtime)
    report = batch_consistency(clf, fixture_texts(), batch=64)
    assert report["n"] >= 150
    assert report["label_agreement"] == 1.0, report
    assert report["max_score_diff"] < 1e-5, report

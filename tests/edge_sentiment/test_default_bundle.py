"""The packaged default bundle gives a text the same label and scores alone and in a batch (ONNX:
static int8 activations; TFLite: one signature per length), and no identity word moves a score
(its tokenizer reads them all as one word). 2.0.0 failed both on ONNX: dynamic int8 changed 1
of 160 fixture texts between a one-text call and a 64-text call (score difference 0.025), and
identity words moved scores in every group."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.evaluate import batch_consistency, read_labeled_tsv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
SPLITS = ("reviews/dev.tsv", "reviews/test.tsv", "sst2/dev.tsv")


def fixture_texts() -> list[str]:
    return [t for split in SPLITS for t in read_labeled_tsv(FIXTURES / split)[0]]


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_default_bundle_labels_alone_as_in_a_batch(runtime: str) -> None:
    clf = SentimentClassifier.load(runtime=runtime)
    report = batch_consistency(clf, fixture_texts(), batch=64)
    assert report["n"] >= 150
    assert report["label_agreement"] == 1.0, report
    assert report["max_score_diff"] < 1e-5, report


FRAMES = ("My {} neighbour fixed the fence for free.", "The {} couple at the next table was loud.",
          "I met a {} author at the book fair.", "Our new manager is {}.")
GROUPS = {"religion": ("Muslim", "Christian", "Jewish", "Hindu", "Buddhist", "atheist"),
          "sexuality": ("gay", "lesbian", "straight", "bisexual", "transgender"),
          "race": ("Black", "white", "Asian", "Hispanic", "Arab"),
          "nationality": ("Mexican", "Indian", "Nigerian", "German", "Chinese", "Iranian")}


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_default_bundle_scores_do_not_move_with_identity_words(runtime: str, group: str) -> None:
    """Frames and words of our own (not the behavioural suite's): within a group, every word
    gives exactly the same scores. 2.0.0 failed this in every group on both runtimes."""
    clf = SentimentClassifier.load(runtime=runtime)
    for frame in FRAMES:
        rows = {tuple(p.scores.values()) for p in clf.classify([frame.format(w)
                                                               for w in GROUPS[group]])}
        assert len(rows) == 1, (frame, rows)

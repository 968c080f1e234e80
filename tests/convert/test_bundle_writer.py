"""Golden examples: only texts whose label cannot flip under per-call int8 quantization."""

from __future__ import annotations

import numpy as np

from edge_sentiment_convert.bundle_writer import MIN_GOLDEN_MARGIN, _pick_golden

LABELS = ("negative", "neutral", "positive")


def test_golden_examples_skip_near_ties() -> None:
    texts = ["clear no", "near tie", "clear yes", "fairly neutral"]
    onnx = np.array([[0.90, 0.05, 0.05],
                     [0.46, 0.45, 0.09],  # neutral and negative 0.01 apart: could flip
                     [0.05, 0.05, 0.90],
                     [0.20, 0.70, 0.10]])
    tflite = onnx + 0.005
    golden = _pick_golden(LABELS, texts, [onnx, tflite], per_label=2)
    assert [g.text for g in golden] == ["clear no", "fairly neutral", "clear yes"]
    assert all(max(g.scores.values()) - sorted(g.scores.values())[-2] >= MIN_GOLDEN_MARGIN
               for g in golden)

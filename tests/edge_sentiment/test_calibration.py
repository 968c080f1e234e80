"""The manifest's calibration: validated on load and applied by the runtime to every score."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.bundle import open_bundle
from edge_sentiment.errors import ManifestError

TEXTS = ["great value, works well", "broken on arrival", "it is a phone"]


def _with(cal: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["calibration"] = cal
        data["golden_tolerance"] = 1.0  # the golden scores were made without it; labels hold
    return edit


def test_temperature_and_bias_reshape_scores(bundle_copy: Callable[..., Path],
                                             tiny_bundle: Path) -> None:
    plain = SentimentClassifier.load(tiny_bundle, runtime="onnx").classify(TEXTS)
    hot = SentimentClassifier.load(bundle_copy(_with({"temperature": 4.0, "bias": [0, 0, 0]})),
                                   runtime="onnx").classify(TEXTS)
    for p, h in zip(plain, hot):
        assert p.label == h.label  # a temperature never moves a decision
        assert max(h.scores.values()) < max(p.scores.values())
        logp = {k: math.log(v) for k, v in p.scores.items()}
        logh = {k: math.log(v) for k, v in h.scores.items()}
        # softmax(z / T): log-probability differences shrink by exactly T
        assert logh["positive"] - logh["negative"] == pytest.approx(
            (logp["positive"] - logp["negative"]) / 4, abs=1e-3)
    neutral = SentimentClassifier.load(bundle_copy(_with({"temperature": 1.0,
                                                          "bias": [0, 0.5, 0]}), name="n"),
                                       runtime="onnx").classify(TEXTS)
    for p, n in zip(plain, neutral):  # a bias on one class raises its probability everywhere
        assert n.scores["neutral"] > p.scores["neutral"]


@pytest.mark.parametrize("cal", [{"temperature": 0}, {"temperature": float("inf")},
                                 {"temperature": 1, "bias": [0, 1]},
                                 {"temperature": 1, "bias": [0, "x", 0]},
                                 {"temperature": True}, {"temp": 1}, [1, 2]])
def test_bad_calibration_is_a_manifest_error(bundle_copy: Callable[..., Path], cal: Any) -> None:
    with pytest.raises(ManifestError, match="calibration"):
        open_bundle(bundle_copy(_with(cal)))


def test_calibration_round_trips_through_the_manifest(bundle_copy: Callable[..., Path]) -> None:
    manifest = open_bundle(bundle_copy(_with({"temperature": 1.5, "bias": [0, 0.5, -0.25]}))
                           ).manifest
    assert manifest.calibration is not None
    assert manifest.to_json()["calibration"] == {"temperature": 1.5, "bias": [0, 0.5, -0.25]}

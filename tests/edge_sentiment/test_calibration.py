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
                                 {"temperature": True}, {"temp": 1}, [1, 2],
                                 {"temperature": 1, "confidence": [1.5]},
                                 {"temperature": 1, "confidence": [0, 0]},
                                 {"temperature": 1, "confidence": [1, float("nan")]},
                                 {"temperature": 1, "confidence": "1.5,0"}])
def test_bad_calibration_is_a_manifest_error(bundle_copy: Callable[..., Path], cal: Any) -> None:
    with pytest.raises(ManifestError, match="calibration"):
        open_bundle(bundle_copy(_with(cal)))


def test_calibration_round_trips_through_the_manifest(bundle_copy: Callable[..., Path]) -> None:
    manifest = open_bundle(bundle_copy(_with({"temperature": 1.5, "bias": [0, 0.5, -0.25]}))
                           ).manifest
    assert manifest.calibration is not None
    assert manifest.to_json()["calibration"] == {"temperature": 1.5, "bias": [0, 0.5, -0.25]}


def test_confidence_map_bends_scores_and_keeps_labels(bundle_copy: Callable[..., Path],
                                                      tiny_bundle: Path) -> None:
    plain = SentimentClassifier.load(tiny_bundle, runtime="onnx").classify(TEXTS)
    cal = {"temperature": 1.0, "bias": [0, 0, 0], "confidence": [2.0, 0.3]}
    bent = SentimentClassifier.load(bundle_copy(_with(cal)), runtime="onnx").classify(TEXTS)
    for p, b in zip(plain, bent):
        assert b.label == p.label
        assert sum(b.scores.values()) == pytest.approx(1.0, abs=1e-6)
        # the winner's log-odds: 2 * logit(p) + 0.3
        want = 1 / (1 + math.exp(-(2 * math.log(p.score / (1 - p.score)) + 0.3)))
        assert b.score == pytest.approx(max(want, _tie(p)), abs=1e-4)
        others = [k for k in p.scores if k != p.label]  # the losers keep their ratio
        assert b.scores[others[0]] / b.scores[others[1]] == pytest.approx(
            p.scores[others[0]] / p.scores[others[1]], rel=1e-4)


def _tie(p: Any) -> float:
    second = sorted(p.scores.values())[-2]
    return float(second / (1 - p.score + second))


@pytest.mark.parametrize("probs", [[0.4, 0.35, 0.25], [0.34, 0.33, 0.33], [0.5, 0.5, 0.0],
                                   [0.98, 0.01, 0.01], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
def test_confidence_map_never_changes_the_winner(probs: list[float]) -> None:
    from edge_sentiment.classifier import _map_confidence

    best = probs.index(max(probs))
    for slope, offset in ((0.2, -5.0), (3.0, -2.0), (1.0, 0.0), (5.0, 4.0)):
        out = _map_confidence(probs, (slope, offset))
        assert out.index(max(out)) == best
        assert sum(out) == pytest.approx(1.0, abs=1e-9)
        assert all(v >= 0 for v in out)


def test_confidence_round_trips_and_is_left_out_when_absent(
        bundle_copy: Callable[..., Path]) -> None:
    cal = {"temperature": 1.5, "bias": [0, 0.5, -0.25], "confidence": [1.5, -0.45]}
    assert open_bundle(bundle_copy(_with(cal))).manifest.to_json()["calibration"] == cal
    plain = {"temperature": 1.5, "bias": [0, 0.5, -0.25]}  # an older manifest's bytes stay
    assert open_bundle(bundle_copy(_with(plain), name="p")).manifest.to_json()[
        "calibration"] == plain

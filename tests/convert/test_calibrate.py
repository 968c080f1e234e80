"""Fitting the calibration: biases that restore a collapsed neutral class, a temperature that
brings confidence to accuracy, and the ECE the card reports."""

from __future__ import annotations

import numpy as np

from edge_sentiment_convert.calibrate import DevSet, ece, fit, fit_temperature, source_score


def _collapsed(n: int = 3000, seed: int = 0) -> DevSet:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), gold] += 2.0
    logits[:, 1] -= 2.5  # a model that leans away from neutral
    return DevSet("x", logits * 3, gold, binary=False)  # and is overconfident


def test_fit_raises_neutral_recall_and_the_score() -> None:
    d = _collapsed()
    before_f1, before_recall = source_score(d, np.zeros(3))
    f = fit([d], min_neutral_recall=0.45)
    after_f1, after_recall = source_score(d, np.array(f.bias))
    assert before_recall < 0.45 <= after_recall
    assert after_f1 > before_f1 + 0.03
    assert f.temperature > 1.5  # the x3 overconfidence is taken back
    assert f.bias[0] == 0.0


def test_temperature_lowers_ece() -> None:
    d = _collapsed(seed=1)
    z = d.logits
    def ece_at(t: float) -> float:
        p = np.exp(z / t) / np.exp(z / t).sum(1, keepdims=True)
        return ece(p.max(1), p.argmax(1) == d.gold)
    t = fit_temperature(z, d.gold)
    assert ece_at(t) < ece_at(1.0) / 2


def test_binary_source_is_scored_on_positive_against_negative() -> None:
    gold = np.array([0, 2, 0, 2])
    logits = np.array([[1.0, 5.0, 0.0], [0.0, 5.0, 1.0], [2.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
    score, recall = source_score(DevSet("b", logits, gold, binary=True), np.zeros(3))
    assert score == 1.0 and recall == 1.0  # neutral's huge logit is ignored


def test_ece_of_a_perfectly_calibrated_bin_is_zero() -> None:
    conf = np.full(10, 0.7)
    correct = np.array([1] * 7 + [0] * 3, dtype=bool)
    assert ece(conf, correct) == 0.0
    assert abs(ece(np.full(10, 0.9), correct) - 0.2) < 1e-9

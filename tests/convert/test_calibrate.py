"""Fitting the calibration: biases that restore a collapsed neutral class, a temperature that
brings confidence to accuracy, and the ECE the card reports."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_sentiment_convert.calibrate import (
    DevSet,
    Fit,
    Floors,
    decided,
    ece,
    fit,
    fit_temperature,
    map_confidence,
    softmax,
    source_score,
)


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
    f = fit([d], 0.45)
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


def _two_faced(n: int = 6000, seed: int = 2) -> DevSet:
    """A model over-confident on its doubtful calls and under-confident on its sure ones: its
    top label is right with probability sigmoid(2 * logit(p) - 0.5) at top probability p."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 3)) * 1.5
    probs = softmax(logits)
    top, p = probs.argmax(1), probs.max(1)
    right = rng.random(n) < 1 / (1 + np.exp(-(2 * np.log(p / (1 - p)) - 0.5)))
    other = (top + rng.integers(1, 3, n)) % 3
    return DevSet("r", logits, np.where(right, top, other), binary=False)


def test_confidence_map_lowers_ece_where_a_temperature_cannot() -> None:
    d = _two_faced()
    plain = fit([d], 0.0)
    mapped = fit([d], 0.0, confidence=True)
    assert plain.confidence == () and len(mapped.confidence) == 2
    assert (mapped.temperature, mapped.bias) == (plain.temperature, plain.bias)

    def ece_of(conf: tuple[float, ...]) -> float:
        probs = softmax((d.logits + np.array(plain.bias)) / plain.temperature)
        if conf:
            probs = map_confidence(probs, *conf)
        return ece(*decided(d, probs))

    assert ece_of(mapped.confidence) < ece_of(()) / 2
    assert mapped.confidence[0] > 1.0  # stretched: the doubtful go down, the sure go up


def test_convert_map_is_the_runtime_map() -> None:
    from edge_sentiment.classifier import _map_confidence

    rng = np.random.default_rng(3)
    probs = softmax(rng.normal(size=(300, 3)) * 3)
    probs[0] = [0.5, 0.5, 0.0]
    probs[1] = [1.0, 0.0, 0.0]
    for slope, offset in ((1.5, -0.45), (0.3, 2.0), (4.0, -3.0)):
        ours = map_confidence(probs, slope, offset)
        theirs = np.array([_map_confidence(list(map(float, row)), (slope, offset))
                           for row in probs])
        assert np.abs(ours - theirs).max() < 1e-9
        assert (ours.argmax(1) == probs.argmax(1)).all()


def _source(name: str, n: int, shares: list[float], neutral_edge: float, seed: int) -> DevSet:
    rng = np.random.default_rng(seed)
    gold = rng.choice(3, n, p=shares)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), gold] += 1.5
    logits[gold == 1, 1] += neutral_edge - 1.5
    return DevSet(name, logits, gold, binary=False)


def test_floors_hold_the_named_sources_only() -> None:
    """A small, mostly positive source with a few hard neutral rows (amazon_alexa dev: 9
    neutral texts) pins the soft fit's neutral bias; floors that name only the sources the
    targets are about free it, and the mean dev score rises."""
    big = _source("big", 3000, [0.4, 0.2, 0.4], 1.5, 1)
    small = _source("small", 200, [0.08, 0.05, 0.87], 0.0, 2)
    soft = fit([big, small], 0.45)
    held = fit([big, small], Floors(neutral_recall=0.45, sources=("big",), weight=100.0))
    assert source_score(small, np.array(soft.bias))[1] >= 0.45
    assert source_score(small, np.array(held.bias))[1] < 0.45  # not asked for
    assert source_score(big, np.array(held.bias))[1] >= 0.45
    assert held.mean_score > soft.mean_score + 0.01


def test_floor_shortfalls() -> None:
    three = DevSet("a", np.zeros((1, 3)), np.zeros(1, dtype=int), binary=False)
    two = DevSet("b", np.zeros((1, 3)), np.zeros(1, dtype=int), binary=True)
    rules = Floors(neutral_recall=0.45, sources=("a", "b"), teacher=(("a", 0.70),),
                   max_gap=0.01, binary=0.89, weight=100.0)
    assert rules.shortfall(three, 0.68, 0.40) == pytest.approx(0.05 + 0.01)
    assert rules.shortfall(three, 0.70, 0.50) == 0.0
    assert rules.shortfall(two, 0.88, 1.0) == pytest.approx(0.01)
    assert Floors(0.45, sources=("a",)).shortfall(two, 0.5, 0.0) == 0.0  # b not named


def test_default_config_holds_the_card_targets_on_the_gap_sources() -> None:
    from pathlib import Path

    from edge_sentiment_convert.config import load_config
    from edge_sentiment_convert.stages.calibrate import floors

    cfg = load_config(Path(__file__).parents[2] / "convert/configs/default.toml")
    teacher = {"amazon_marc_en": 0.678, "amazon_alexa": 0.631, "sst2": 0.889}
    rules = floors(cfg, teacher)
    assert isinstance(rules, Floors) and rules.weight == 100.0
    assert "amazon_alexa" not in rules.sources and "tweeteval_sentiment" in rules.sources
    assert dict(rules.teacher) == {"amazon_marc_en": 0.678, "sst2": 0.889}
    assert (rules.neutral_recall, rules.max_gap, rules.binary) == (0.45, 0.01, 0.89)
    soft = floors(replace(cfg, fit_to_targets=False), teacher)
    assert soft == 0.45


def test_confidence_map_holds_each_source_under_max_ece_where_it_can() -> None:
    """Two sources the log-loss weighs alike but which want different maps: unguarded, one ends
    above the ceiling; with ``max_ece`` the map keeps both at or below it."""
    a = _source("a", 3000, [1 / 3, 1 / 3, 1 / 3], 1.5, 1)
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 3, 200)
    z = rng.normal(size=(200, 3))
    z[np.arange(200), gold] += 1.5
    b = DevSet("b", z * 1.5, gold, binary=False)  # over-confident against a

    def worst(f: Fit) -> float:
        out = []
        for d in (a, b):
            probs = softmax((d.logits + np.array(f.bias)) / f.temperature)
            out.append(ece(*decided(d, map_confidence(probs, *f.confidence))))
        return max(out)

    free = fit([a, b], 0.0, confidence=True)
    assert fit([a, b], 0.0, confidence=True, max_ece=0.0) == free  # 0: no ceiling
    held = fit([a, b], 0.0, confidence=True, max_ece=0.04)
    assert worst(free) > 0.04 >= worst(held)
    assert (held.temperature, held.bias) == (free.temperature, free.bias)  # the map alone moves

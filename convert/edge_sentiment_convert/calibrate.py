"""Fit a bundle's calibration on pooled dev text: per-class biases, a temperature, and (if asked)
a confidence map.

The runtime computes ``softmax((logits + bias) / temperature)``. The biases decide between the
classes, so they are fitted first, for the mean dev score over the sources (macro-F1; accuracy
of P(positive) against P(negative) for a two-label source), with a penalty for a 3-class source
whose neutral recall falls under ``min_neutral_recall``: a model distilled from a teacher that
saw a large binary source leans away from neutral. The temperature does not move a decision;
it is fitted for log-loss on the pooled 3-class dev rows, so the scores mean probabilities.
One temperature cannot make a review model that is over-confident on its doubtful calls and
under-confident on its sure ones honest at both ends: the confidence map (slope, offset) on the
winning class's log-odds is fitted last, for the log-loss of "the label is right" averaged over
the sources (each source counts the same, so the many tweets do not outvote the reviews). It
never changes a label. Pure numpy on arrays: no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NEUTRAL, NEG, POS = 1, 0, 2


@dataclass(frozen=True)
class DevSet:
    """One source's dev rows: log-probabilities (or logits) [n, 3] and gold label indices."""

    source: str
    logits: np.ndarray
    gold: np.ndarray
    binary: bool


@dataclass(frozen=True)
class Fit:
    temperature: float
    bias: tuple[float, float, float]
    mean_score: float
    before: float
    confidence: tuple[float, ...] = ()  # (slope, offset); () when not fitted


def _macro_f1(gold: np.ndarray, pred: np.ndarray, classes: tuple[int, ...]) -> float:
    f1s = []
    for c in classes:
        tp = float(np.sum((pred == c) & (gold == c)))
        fp = float(np.sum((pred == c) & (gold != c)))
        fn = float(np.sum((pred != c) & (gold == c)))
        if tp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


def source_score(d: DevSet, bias: np.ndarray) -> tuple[float, float]:
    """(score, neutral recall) of one source with ``bias`` added (neutral recall 1 if binary)."""
    z = d.logits + bias
    if d.binary:
        pred = np.where(z[:, POS] >= z[:, NEG], POS, NEG)
        return float(np.mean(pred == d.gold)), 1.0
    pred = z.argmax(1)
    neutral = d.gold == NEUTRAL
    recall = float(np.mean(pred[neutral] == NEUTRAL)) if neutral.any() else 1.0
    return _macro_f1(d.gold, pred, (NEG, NEUTRAL, POS)), recall


@dataclass(frozen=True)
class Floors:
    """What the bias fit holds on dev where it can: each shortfall, summed over the sources it
    applies to, costs ``weight`` times itself against the mean dev score (2: a soft floor;
    100: as good as a constraint, the mean deciding only among biases that meet every floor).

    ``neutral_recall`` applies to each 3-class source in ``sources`` (() = every source);
    ``teacher`` maps a source to its teacher's dev score, which the student may trail by at
    most ``max_gap``; ``binary`` is the least accuracy of a two-label source."""

    neutral_recall: float = 0.0
    sources: tuple[str, ...] = ()
    teacher: tuple[tuple[str, float], ...] = ()
    max_gap: float = 0.0
    binary: float = 0.0
    weight: float = 2.0

    def shortfall(self, d: DevSet, score: float, recall: float) -> float:
        if self.sources and d.source not in self.sources:
            return 0.0
        short = max(0.0, self.neutral_recall - recall)
        short += sum(max(0.0, t - self.max_gap - score) for s, t in self.teacher if s == d.source)
        return short + (max(0.0, self.binary - score) if d.binary else 0.0)


def mean_score(sets: list[DevSet], bias: np.ndarray) -> float:
    return float(np.mean([source_score(d, bias)[0] for d in sets]))


def _floors(floors: Floors | float) -> Floors:
    return floors if isinstance(floors, Floors) else Floors(neutral_recall=floors)


def objective(sets: list[DevSet], bias: np.ndarray, floors: Floors | float) -> float:
    """The mean dev score less the floors' penalty (``floors``: a Floors, or the neutral-recall
    floor of every 3-class source)."""
    rules = _floors(floors)
    scores = [source_score(d, bias) for d in sets]
    penalty = sum(rules.shortfall(d, s, r) for d, (s, r) in zip(sets, scores))
    return float(np.mean([s for s, _ in scores])) - rules.weight * penalty / len(scores)


def fit_bias(sets: list[DevSet], floors: Floors | float = 0.45, span: float = 3.0
             ) -> np.ndarray:
    """Grid search over (neutral, positive) biases (negative fixed at 0), coarse then fine; a
    finer first grid for Floors, whose steep penalties leave narrow ridges a 0.2 grid can miss
    (a number keeps the grid its fits were made with)."""
    steps = (((0.1, span), (0.02, 0.2), (0.01, 0.04)) if isinstance(floors, Floors)
             else ((0.2, span), (0.05, 0.3), (0.01, 0.06)))
    neutral, pos = _grid_search(
        lambda n, p: objective(sets, np.array([0.0, n, p]), floors), (0.0, 0.0), steps, 1e-9)
    return np.array([0.0, neutral, pos])


def _grid_search(value: Callable[[float, float], float], start: tuple[float, float],
                 steps: tuple[tuple[float, float], ...], tol: float) -> tuple[float, float]:
    """The point of highest ``value``, coarse then fine: for each (step, radius), the square grid
    around the best point so far; a point must beat the best by more than ``tol``."""
    best, best_val = start, value(*start)
    for step, radius in steps:
        a0, b0 = best
        grid = np.arange(-radius, radius + step / 2, step)
        for da in grid:
            for db in grid:
                cand = (float(a0 + da), float(b0 + db))
                val = value(*cand)
                if val > best_val + tol:
                    best, best_val = cand, val
    return best


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The temperature minimising log-loss (golden-section search on log T in [0.05, 20])."""
    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return float(-np.mean(logp[np.arange(len(gold)), gold]))

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(1, keepdims=True))


def map_confidence(probs: np.ndarray, slope: float, offset: float) -> np.ndarray:
    """The runtime's confidence map (``edge_sentiment.classifier._map_confidence``) on rows of
    probabilities: the winner's p becomes sigmoid(slope * logit(p) + offset), held above the
    runner-up's; the other classes keep their ratios."""
    rows = np.arange(len(probs))
    best = probs.argmax(1)
    p = probs[rows, best]
    rest = 1.0 - p
    sure = rest <= 1e-12
    safe = np.where(sure, 1.0, rest)
    z = slope * np.log(np.where(sure, 0.5, p) / safe) + offset
    mapped = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    second = np.sort(probs, 1)[:, -2]
    mapped = np.maximum(mapped, second / (safe + second) + 1e-7)
    out = probs * ((1.0 - mapped) / safe)[:, None]
    out[rows, best] = mapped
    return np.where(sure[:, None], probs, out)


def decided(d: DevSet, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, right) per row as ``edge_sentiment.evaluate`` scores them: the winner's
    probability, or for a two-label source P(decided) / (P(positive) + P(negative))."""
    if d.binary:
        pos, neg = probs[:, POS], probs[:, NEG]
        pred = np.where(pos >= neg, POS, NEG)
        return np.maximum(pos, neg) / np.maximum(pos + neg, 1e-12), pred == d.gold
    return probs.max(1), probs.argmax(1) == d.gold


def fit_confidence(sets: list[DevSet], bias: np.ndarray, temperature: float,
                   max_ece: float = 0.0) -> tuple[float, float]:
    """(slope, offset) minimising the log-loss of "the label is right" at the mapped
    confidence, averaged over the sources; grid search, coarse then fine. With ``max_ece`` > 0,
    each source's ECE above it costs 100 times the excess: a map that holds every source's ECE
    at or below it wins over one with a lower log-loss that does not."""
    probs = [softmax((d.logits + bias) / temperature) for d in sets]

    def loss(slope: float, offset: float) -> float:
        total = excess = 0.0
        for d, pr in zip(sets, probs):
            conf, right = decided(d, map_confidence(pr, slope, offset))
            if max_ece > 0:
                excess += max(0.0, ece(conf, right) - max_ece)
            conf = np.clip(conf, 1e-6, 1 - 1e-6)
            total -= float(np.mean(np.where(right, np.log(conf), np.log(1 - conf))))
        return total / len(sets) + 100 * excess

    return _grid_search(lambda slope, offset: -loss(slope, offset) if slope >= 0.05 else -np.inf,
                        (1.0, 0.0), ((0.1, 2.0), (0.02, 0.1), (0.005, 0.02)), 1e-12)


def fit(sets: list[DevSet], floors: Floors | float = 0.45, confidence: bool = False,
        max_ece: float = 0.0) -> Fit:
    """Biases for the decisions (``floors``: see Floors; a number is the neutral-recall floor of
    every 3-class source, soft), the temperature for the probabilities, then (``confidence``)
    the confidence map (``max_ece``: see fit_confidence)."""
    before = mean_score(sets, np.zeros(3))
    bias = fit_bias(sets, floors)
    three = [d for d in sets if not d.binary]
    pooled = np.concatenate([d.logits for d in three]) + bias
    gold = np.concatenate([d.gold for d in three])
    temp = round(fit_temperature(pooled, gold), 4)
    bias = np.array([0.0, round(float(bias[1]), 4), round(float(bias[2]), 4)])
    mapped = fit_confidence(sets, bias, temp, max_ece) if confidence else ()
    return Fit(temp, (0.0, float(bias[1]), float(bias[2])),
               mean_score(sets, bias), before,
               tuple(round(v, 4) for v in mapped))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the confidence-weighted gap between confidence and accuracy
    over ``bins`` equal-width confidence bins."""
    if not len(confidence):
        return 0.0
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(float(confidence[sel].mean()) - float(correct[sel].mean()))
    return float(total)

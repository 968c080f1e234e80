"""Fit a bundle's calibration on pooled dev text: per-class biases, then a temperature.

The runtime computes ``softmax((logits + bias) / temperature)``. The biases decide between the
classes, so they are fitted first, for the mean dev score over the sources (macro-F1; accuracy
of P(positive) against P(negative) for a two-label source), with a penalty for a 3-class source
whose neutral recall falls under ``min_neutral_recall``: a model distilled from a teacher that
saw a large binary source leans away from neutral. The temperature does not move a decision;
it is fitted last, for log-loss on the pooled 3-class dev rows, so the scores mean
probabilities. Pure numpy on arrays: no I/O here.
"""

from __future__ import annotations

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


def objective(sets: list[DevSet], bias: np.ndarray, min_neutral_recall: float) -> float:
    scores = [source_score(d, bias) for d in sets]
    penalty = sum(max(0.0, min_neutral_recall - r) for _, r in scores)
    return float(np.mean([s for s, _ in scores])) - 2.0 * penalty / len(scores)


def fit_bias(sets: list[DevSet], min_neutral_recall: float = 0.45, span: float = 3.0
             ) -> np.ndarray:
    """Grid search over (neutral, positive) biases (negative fixed at 0), coarse then fine."""
    best = np.zeros(3)
    best_val = objective(sets, best, min_neutral_recall)
    for step, radius in ((0.2, span), (0.05, 0.3), (0.01, 0.06)):
        centre = best.copy()
        grid = np.arange(-radius, radius + step / 2, step)
        for dn in grid:
            for dp in grid:
                cand = np.array([0.0, centre[NEUTRAL] + dn, centre[POS] + dp])
                val = objective(sets, cand, min_neutral_recall)
                if val > best_val + 1e-9:
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


def fit(sets: list[DevSet], min_neutral_recall: float = 0.45) -> Fit:
    """Biases for the decisions, then the temperature for the probabilities."""
    before = objective(sets, np.zeros(3), min_neutral_recall)
    bias = fit_bias(sets, min_neutral_recall)
    three = [d for d in sets if not d.binary]
    pooled = np.concatenate([d.logits for d in three]) + bias
    gold = np.concatenate([d.gold for d in three])
    temp = fit_temperature(pooled, gold)
    return Fit(round(temp, 4), (0.0, round(float(bias[1]), 4), round(float(bias[2]), 4)),
               objective(sets, bias, min_neutral_recall), before)


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

"""Score a classifier on a labelled TSV: accuracy, macro-F1, per class, confusion.

A file whose labels are only ``negative`` and ``positive`` is scored as a binary
decision: positive if P(positive) >= P(negative), whatever P(neutral) is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .classifier import Prediction
from .errors import InputError


class _Classifies(Protocol):
    @property
    def labels(self) -> tuple[str, ...]: ...

    def classify(self, text: list[str]) -> list[Prediction]: ...


def read_labeled_tsv(path: Path) -> tuple[list[str], list[str]]:
    """Header ``text<TAB>label``; each line split on its last tab; no quoting."""
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")  # a lone CR stays in its text
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as UTF-8: {exc}") from exc
    if lines[0].rstrip("\r").split("\t") != ["text", "label"]:
        raise InputError(f"{path}:1: header must be 'text<TAB>label', got {lines[0][:60]!r}")
    texts, labels = [], []
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if "\t" not in line:
            raise InputError(f"{path}:{no}: no tab; expected text<TAB>label")
        text, label = line.rstrip("\r").rsplit("\t", 1)
        texts.append(text)
        labels.append(label)
    if not texts:
        raise InputError(f"{path}: no examples")
    return texts, labels


def score(gold: list[str], pred: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, macro-recall, per-class P/R/F1 and the confusion matrix."""
    index = {lab: i for i, lab in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        confusion[index[g]][index[p]] += 1
    per_class: dict[str, dict[str, Any]] = {}
    for i, lab in enumerate(labels):
        tp = confusion[i][i]
        predicted = sum(row[i] for row in confusion)
        actual = sum(confusion[i])
        prec = tp / predicted if predicted else 0.0
        rec = tp / actual if actual else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[lab] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                          "support": actual}
    present = [lab for lab in labels if per_class[lab]["support"]]
    n = len(gold)
    return {
        "n": n,
        "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / n, 4),
        "macro_f1": round(sum(per_class[lab]["f1"] for lab in present) / len(present), 4),
        "macro_recall": round(sum(per_class[lab]["recall"] for lab in present) / len(present), 4),
        "per_class": per_class,
        "confusion": {"labels": labels, "matrix": confusion},
    }


def evaluate(clf: _Classifies, texts: list[str], gold: list[str], batch: int = 64,
             progress: Callable[[int, int], None] | None = None
             ) -> tuple[dict[str, Any], list[Prediction]]:
    """Classify ``texts`` and score them against ``gold``; ``progress(done, total)`` is called
    after each batch."""
    unknown = sorted(set(gold) - set(clf.labels))
    if unknown:
        raise InputError(f"labels {unknown} are not in the model's labels {list(clf.labels)}")
    preds: list[Prediction] = []
    for start in range(0, len(texts), batch):
        preds.extend(clf.classify(texts[start:start + batch]))
        if progress is not None:
            progress(len(preds), len(texts))
    binary = set(gold) <= {"negative", "positive"} and {"negative", "positive"} <= set(clf.labels)
    if binary:
        labels = ["negative", "positive"]
        decided = ["positive" if p.scores["positive"] >= p.scores["negative"] else "negative"
                   for p in preds]
    else:
        labels = list(clf.labels)
        decided = [p.label for p in preds]
    result = score(gold, decided, labels)
    result["binary"] = binary
    result["ece"] = round(expected_calibration_error(preds, gold, binary), 4)
    return result, preds


def expected_calibration_error(preds: list[Prediction], gold: list[str], binary: bool,
                               bins: int = 10) -> float:
    """ECE over ``bins`` equal-width bins of the decision's confidence: the max score, or for a
    binary file P(decided) / (P(positive) + P(negative))."""
    stats = [[0.0, 0.0, 0] for _ in range(bins)]  # confidence sum, correct sum, count
    for p, g in zip(preds, gold):
        if binary:
            pos, neg = p.scores["positive"], p.scores["negative"]
            label = "positive" if pos >= neg else "negative"
            conf = max(pos, neg) / (pos + neg) if pos + neg > 0 else 0.5
        else:
            label, conf = p.label, p.score
        b = stats[min(int(conf * bins), bins - 1)]
        b[0] += conf
        b[1] += float(label == g)
        b[2] += 1
    n = len(preds)
    return sum(abs(c - k) / n for c, k, m in stats if m) if n else 0.0


def batch_consistency(clf: _Classifies, texts: list[str], batch: int = 256) -> dict[str, Any]:
    """Each text classified alone and in calls of ``batch`` texts (which the classifier cuts
    into length-sorted chunks): the share of texts whose label is the same both ways, and the
    largest difference of any score. A model whose activations are quantized with one scale
    per call (dynamic int8) can give a text different scores in different company."""
    if not texts:
        raise InputError("batch consistency needs at least one text")
    alone = [clf.classify([t])[0] for t in texts]
    together = [p for start in range(0, len(texts), batch)
                for p in clf.classify(texts[start:start + batch])]
    same = sum(a.label == b.label for a, b in zip(alone, together))
    diff = max(abs(a.scores[k] - b.scores[k]) for a, b in zip(alone, together) for k in a.scores)
    return {"n": len(texts), "batch": batch, "label_agreement": round(same / len(texts), 6),
            "changed": len(texts) - same, "max_score_diff": float(f"{diff:.3g}")}

"""How far can a bundle's calibration go on each dev split, and how much of a split's ECE is the
split's size?

For the default bundle (or ``--bundle``), through the ONNX runtime:
1. each split's ECE (10 bins) at a range of temperatures, with the manifest's biases: tweets
   want a higher temperature than reviews, so one temperature cannot serve every split;
2. one temperature per predicted class (fitted on pooled 3-class dev for log-loss; decisions
   unchanged), the smallest change to the runtime's formula that could;
3. the noise floor: the ECE a perfectly calibrated model shows on a split of that size
   (labels drawn from the model's own probabilities, 200 draws, median and 90th percentile).

    python experiments/calibration_noise.py --data ../shared/data [--bundle B]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge_sentiment import SentimentClassifier
from edge_sentiment.bundle import open_bundle
from edge_sentiment_convert.calibrate import ece, fit_temperature
from edge_sentiment_convert.data import LABELS, DataError, load_split

SOURCES = ("amazon_alexa", "amazon_marc_en", "sst2", "sst5_3class", "tweeteval_sentiment",
           "twitter_us_airline")


def logits_of(bundle: Path | None, data: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's logits with the manifest's biases added (up to a per-row constant)."""
    clf = SentimentClassifier.load(bundle, runtime="onnx")
    cal = open_bundle(bundle).manifest.calibration
    temperature = cal.temperature if cal else 1.0
    out = {}
    for src in SOURCES:
        for split in ("dev", "test"):
            try:
                rows = load_split(data, src, split)
            except DataError:  # a source without this split
                continue
            res = clf.classify([r.text for r in rows])
            logp = np.log(np.clip([[r.scores[lab] for lab in LABELS] for r in res], 1e-12, 1))
            out[f"{src}/{split}"] = (logp * temperature,
                                     np.array([LABELS.index(r.label) for r in rows]))
    return out


def probs(z: np.ndarray, temps: np.ndarray) -> np.ndarray:
    s = z / temps[z.argmax(1)][:, None]
    s = s - s.max(1, keepdims=True)
    e = np.exp(s)
    return np.asarray(e / e.sum(1, keepdims=True))


def split_ece(key: str, z: np.ndarray, gold: np.ndarray, temps: np.ndarray) -> float:
    p = probs(z, temps)
    if key.startswith("sst2"):  # two labels: P(positive) against P(negative), as eval does
        q = p[:, [0, 2]] / p[:, [0, 2]].sum(1, keepdims=True)
        pred = np.where(q[:, 1] >= q[:, 0], 2, 0)
        return ece(q.max(1), (pred == gold).astype(float))
    return ece(p.max(1), (p.argmax(1) == gold).astype(float))


def noise_floor(z: np.ndarray, temps: np.ndarray, draws: int = 200) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    p = probs(z, temps)
    cum = p.cumsum(1)
    vals = []
    for _ in range(draws):
        gold = (rng.random(len(p))[:, None] > cum).sum(1)
        vals.append(ece(p.max(1), (p.argmax(1) == gold).astype(float)))
    return float(np.median(vals)), float(np.percentile(vals, 90))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--bundle", type=Path, default=None)
    args = ap.parse_args()
    splits = logits_of(args.bundle, args.data)
    three = [k for k in splits if k.endswith("/dev") and not k.startswith("sst2")]
    z = np.concatenate([splits[k][0] for k in three])
    gold = np.concatenate([splits[k][1] for k in three])
    single = fit_temperature(z, gold)
    per_class = np.array([fit_temperature(z[z.argmax(1) == c], gold[z.argmax(1) == c])
                          for c in range(3)])
    print(f"pooled-dev temperature {single:.3f}; per predicted class "
          + ", ".join(f"{lab} {t:.3f}" for lab, t in zip(LABELS, per_class)))
    print("| split | n | " + " | ".join(f"T={t}" for t in (0.9, 1.0, 1.1, 1.2, 1.3, 1.5))
          + " | pooled T | per-class T | calibrated-model ECE at this n (median / p90) |")
    print("|---" * 11 + "|")
    for key, (zs, gs) in splits.items():
        row = [split_ece(key, zs, gs, np.full(3, t)) for t in (0.9, 1.0, 1.1, 1.2, 1.3, 1.5)]
        row += [split_ece(key, zs, gs, np.full(3, single)), split_ece(key, zs, gs, per_class)]
        floor = "n/a (two labels)"
        if not key.startswith("sst2"):
            med, p90 = noise_floor(zs, np.full(3, single))
            floor = f"{100 * med:.1f} / {100 * p90:.1f}"
        print(f"| {key} | {len(gs)} | " + " | ".join(f"{100 * v:.1f}" for v in row)
              + f" | {floor} |")


if __name__ == "__main__":
    main()

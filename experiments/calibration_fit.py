"""The calibration fits side by side on one bundle's outputs: the soft bias fit with a
temperature (2.6.2's), the bias floors held on the gap sources (``fit_to_targets``, as the build
config's ``stages.calibrate.floors`` makes them), and each with the confidence map
(``confidence_map``). Per dev and test split: score, neutral recall and
ECE; fitted on dev only (test is printed, never used to choose).

    python experiments/calibration_fit.py --bundle edge_sentiment/default_bundle \
        --data ../shared/data [--config convert/configs/default.toml] \
        --out experiments/cards/calibration_fit.md

The bundle must carry a temperature and biases and no confidence map: its raw logits are
recovered as ``temperature * log(p) - bias`` (up to a per-row constant).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_sentiment import SentimentClassifier
from edge_sentiment.evaluate import read_labeled_tsv
from edge_sentiment_convert.calibrate import (
    DevSet,
    decided,
    ece,
    fit,
    map_confidence,
    softmax,
    source_score,
)
from edge_sentiment_convert.config import load_config
from edge_sentiment_convert.stages.calibrate import floors

ROOT = Path(__file__).parents[1]
LABELS = ["negative", "neutral", "positive"]


def raw_logits(bundle: Path, data: Path) -> dict[str, DevSet]:
    clf = SentimentClassifier.load(bundle, runtime="onnx")
    cal = clf.bundle.manifest.calibration
    assert cal is not None and not cal.confidence, "needs a bundle with T and biases, no map"
    out = {}
    for src in sorted(p.name for p in data.iterdir() if (p / "dev.tsv").is_file()):
        for split in ("dev", "test"):
            if not (data / src / f"{split}.tsv").is_file():
                continue
            texts, gold = read_labeled_tsv(data / src / f"{split}.tsv")
            probs = [[p.scores[k] for k in LABELS] for s in range(0, len(texts), 64)
                     for p in clf.classify(texts[s:s + 64])]
            z = cal.temperature * np.log(np.clip(np.array(probs), 1e-12, 1)) - np.array(cal.bias)
            out[f"{src}/{split}"] = DevSet(src, z, np.array([LABELS.index(g) for g in gold]),
                                           set(gold) <= {"negative", "positive"})
    return out


def teacher_dev(bundle: Path) -> dict[str, float]:
    evals = json.loads((bundle / "evaluation.json").read_text())["teacher fp32 (ONNX)"]
    return {k.split("/")[0]: r["accuracy"] if r.get("binary") else r["macro_f1"]
            for k, r in evals.items() if k.endswith("/dev")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=ROOT / "convert/configs/default.toml")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cfg = load_config(args.config)
    sets = raw_logits(args.bundle, args.data)
    dev = [d for k, d in sets.items() if k.endswith("/dev")]
    held = floors(replace(cfg, fit_to_targets=True), teacher_dev(args.bundle))
    soft = cfg.min_neutral_recall
    fits = {"soft biases, temperature": fit(dev, soft),
            "soft biases, temperature, map": fit(dev, soft, confidence=True),
            "floors, temperature": fit(dev, held),
            "floors, temperature, map": fit(dev, held, confidence=True)}
    lines = [f"# Calibration fits on {args.bundle}", "",
             "`python experiments/calibration_fit.py --bundle <bundle> --data ../shared/data`; "
             "fitted on dev, test only printed. Cells: score (macro-F1; SST-2 accuracy) / neutral "
             "recall / ECE, percent.", "",
             "| split | " + " | ".join(fits) + " |", "|---|" + "---|" * len(fits)]
    for key, d in sets.items():
        cells = []
        for f in fits.values():
            score, recall = source_score(d, np.array(f.bias))
            probs = softmax((d.logits + np.array(f.bias)) / f.temperature)
            if f.confidence:
                probs = map_confidence(probs, *f.confidence)
            conf, right = decided(d, probs)
            cells.append(f"{100 * score:.1f} / {'' if d.binary else f'{100 * recall:.0f} / '}"
                         f"{100 * ece(conf, right):.1f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", *(f"- {name}: temperature {f.temperature}, bias {f.bias}, confidence "
                    f"{f.confidence or 'none'}, mean dev score {100 * f.mean_score:.2f}"
                    for name, f in fits.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

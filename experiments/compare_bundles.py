"""A candidate bundle against the packaged default, on the figures its build wrote, and the ship
criteria fixed before 2.4.0 finished.

    python experiments/compare_bundles.py build/default/bundle [edge_sentiment/default_bundle]

Reads each bundle's ``evaluation.json`` (student int8 ONNX, dev splits: macro-F1, SST-2
accuracy) and ``behaviour.json`` (failure rate per test), prints both side by side, and says
whether the candidate ships: mean dev score within 0.5 of the default's, no dev split more than
2.0 lower, and every identity group at most 3% failures. Exit 0: ships; 1: does not.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
MODEL = "student int8 (ONNX)"
MAX_MEAN_DROP, MAX_SPLIT_DROP, MAX_IDENTITY = 0.5, 2.0, 0.03


def dev_scores(bundle: Path) -> dict[str, float]:
    """Dev macro-F1 per split (accuracy for SST-2, which has no neutral), in points."""
    rows: dict[str, Any] = json.loads((bundle / "evaluation.json").read_text())[MODEL]
    return {split.removesuffix("/dev"): 100 * (r["accuracy"] if r.get("binary") else r["macro_f1"])
            for split, r in sorted(rows.items()) if split.endswith("/dev")}


def failures(bundle: Path) -> dict[str, float]:
    tests = json.loads((bundle / "behaviour.json").read_text())[MODEL]["tests"]
    return {t["name"]: 100 * t["failure_rate"] for t in tests}


def verdict(old: dict[str, float], new: dict[str, float], fails: dict[str, float]
            ) -> list[str]:
    """The criteria the candidate misses (empty: it ships)."""
    missed = []
    drop = statistics.mean(old.values()) - statistics.mean(new[k] for k in old)
    if drop > MAX_MEAN_DROP:
        missed.append(f"mean dev {drop:.2f} lower (at most {MAX_MEAN_DROP})")
    missed += [f"{k} dev {old[k] - new[k]:.2f} lower (at most {MAX_SPLIT_DROP})"
               for k in old if old[k] - new[k] > MAX_SPLIT_DROP]
    missed += [f"{k} {v:.1f}% failures (at most {100 * MAX_IDENTITY:.0f}%)"
               for k, v in fails.items() if k.startswith("identity") and v > 100 * MAX_IDENTITY]
    return missed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("candidate", type=Path)
    ap.add_argument("default", type=Path, nargs="?", default=ROOT / "edge_sentiment/default_bundle")
    args = ap.parse_args()
    old, new = dev_scores(args.default), dev_scores(args.candidate)
    print(f"| dev | {args.default.name} | {args.candidate.name} |\n|---|---|---|")
    for k in old:
        print(f"| {k} | {old[k]:.2f} | {new.get(k, float('nan')):.2f} |")
    print(f"| mean | {statistics.mean(old.values()):.2f} | "
          f"{statistics.mean(new[k] for k in old):.2f} |\n")
    fo, fn = failures(args.default), failures(args.candidate)
    print("| behaviour failures % | default | candidate |\n|---|---|---|")
    for k in fo:
        print(f"| {k} | {fo[k]:.1f} | {fn.get(k, float('nan')):.1f} |")
    missed = verdict(old, new, fn)
    print("\nships" if not missed else "\ndoes not ship: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())

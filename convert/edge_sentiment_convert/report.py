"""Evaluate artifacts through the real runtime, measure speed, write the model card."""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np

from edge_sentiment import SentimentClassifier
from edge_sentiment.errors import BackendError
from edge_sentiment.evaluate import evaluate, read_labeled_tsv

from .calibrate import DevSet
from .data import LABELS, eval_splits

log = logging.getLogger(__name__)


def eval_bundle(bundle: Path, runtime: str, data_dir: Path, limit: int,
                splits: tuple[str, ...] = ("dev", "test")) -> dict[str, Any]:
    """Score one single-artifact bundle on every dev/test split; keep the labels for agreement."""
    from tqdm import tqdm

    clf = SentimentClassifier.load(bundle, runtime=runtime)
    results: dict[str, Any] = {}
    files = [f for f in eval_splits(data_dir) if f[1] in splits]
    for source, split, path in tqdm(files, desc=f"eval {bundle.name}"):
        texts, gold = read_labeled_tsv(path)
        if limit:
            texts, gold = texts[:limit], gold[:limit]
        scored, preds = evaluate(clf, texts, gold)
        scored["predictions"] = [p.label for p in preds]
        results[f"{source}/{split}"] = scored
    return results


def dev_sets(bundle: Path, runtime: str, data_dir: Path, sources: list[str],
             binary: Collection[str]) -> list[DevSet]:
    """Each source's dev log-probabilities through the runtime (uncalibrated bundle), for
    ``convert.calibrate.fit``: log-probabilities are the logits up to a per-row constant."""
    clf = SentimentClassifier.load(bundle, runtime=runtime)
    out = []
    for source in sources:
        texts, gold = read_labeled_tsv(data_dir / source / "dev.tsv")
        probs = [p.scores for start in range(0, len(texts), 32)
                 for p in clf.classify(texts[start:start + 32])]
        logp = np.log(np.clip(np.array([[p[lab] for lab in LABELS] for p in probs]), 1e-9, 1))
        out.append(DevSet(source, logp, np.array([LABELS.index(g) for g in gold]),
                          source in binary))
    return out


def baseline_bundle(spec: str, out: Path) -> tuple[Path, str] | None:
    """The bundle ``speed_baseline`` names, copied into the build folder the first time (so a
    resumed build times the same one): "packaged" is the installed default bundle."""
    if not spec:
        return None
    from edge_sentiment.bundle import open_bundle

    src = open_bundle(None if spec == "packaged" else spec)
    target = out / "eval_bundles" / "baseline"
    if not (target / "manifest.json").is_file():
        shutil.copytree(src.root, target, dirs_exist_ok=True)
    return target, open_bundle(target).manifest.version


def agreement(a: dict[str, Any], b: dict[str, Any], split: str = "test") -> dict[str, float]:
    """Share of identical 3-class predictions per split (and over all ``split`` files)."""
    out: dict[str, float] = {}
    same = total = 0
    for key in a:
        if key not in b:
            continue
        pa, pb = a[key]["predictions"], b[key]["predictions"]
        hits = sum(x == y for x, y in zip(pa, pb))
        out[key] = round(hits / len(pa), 4)
        if key.endswith("/" + split):
            same, total = same + hits, total + len(pa)
    out[f"all_{split}"] = round(same / total, 4) if total else 0.0
    return out


def speed(bundles: dict[str, tuple[Path, str]], runs: int, rounds: int = 3,
          texts: Path | None = None) -> dict[str, Any]:
    """Single-text latency (tokenize + infer) of each bundle through ``edge-sentiment bench``,
    on its built-in short texts or on those of the labelled TSV ``texts``.

    Each measurement is its own process (one model's thread pool never competes with
    another's), and the bundles take turns over ``rounds`` rounds, so a slow spell of the
    machine hits every model alike; the figures are medians over the rounds."""
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in bundles}
    for _ in range(rounds):
        for name, (path, runtime) in bundles.items():
            seen[name].append(_bench_process(path, runtime, runs, texts))
    return {name: _medians(results) for name, results in seen.items()}


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    def mid(pick: Callable[[dict[str, Any]], float]) -> float:
        return float(statistics.median(pick(r) for r in results))
    return {"p50_ms": mid(lambda r: r["latency_ms"]["p50"]),
            "p95_ms": mid(lambda r: r["latency_ms"]["p95"]),
            "throughput_per_s_batch32": mid(lambda r: r["throughput_per_s"]),
            "load_and_first_s": mid(lambda r: r["load_and_first_s"]),
            "mean_tokens": results[0].get("mean_tokens"),
            "threads": results[0]["threads"], "rounds": len(results)}


def _bench_process(bundle: Path, runtime: str, runs: int, texts: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "edge_sentiment", "bench", "--bundle", str(bundle),
           "--runtime", runtime, "--n", str(runs), "--json",
           *(["--texts", str(texts)] if texts else [])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise BackendError(f"edge-sentiment bench of {bundle} took over 600 s") from exc
    if done.returncode != 0:
        raise BackendError(f"edge-sentiment bench of {bundle} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def machine(threads: int) -> str:
    """The build machine in a few words: the speed ratios depend on the CPU's int8 support
    (the teacher int8 gains more from VNNI than the student does)."""
    from edge_sentiment.hardware import detect

    facts = detect("/")
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines()
                  if line.startswith("model name")), "")
    int8 = [f for f in INT8_FLAGS if f in facts.cpu_flags]
    return ", ".join(p for p in (facts.arch, model, "int8 dot product: " + (
        " ".join(int8) if int8 else "none"), f"{threads} threads") if p)


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def confusion_png(result: dict[str, Any], title: str, out: Path) -> Path:
    """Sum the confusion matrices of the 3-class test splits and draw them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: list[str] = []
    total: list[list[int]] = []
    for key, r in result.items():
        if r["binary"] or not key.endswith("/test"):
            continue
        labels = r["confusion"]["labels"]
        m = r["confusion"]["matrix"]
        total = m if not total else [[a + b for a, b in zip(x, y)] for x, y in zip(total, m)]
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(total, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i, row in enumerate(total):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def score_by_source(result: dict[str, Any], split: str, sources: list[str]) -> dict[str, float]:
    """The headline score of each ``split`` file of the given sources: macro-F1 for 3-class
    splits, accuracy of the binary decision for binary ones (SST-2)."""
    return {k.split("/")[0]: r["accuracy" if r["binary"] else "macro_f1"]
            for k, r in result.items() if k.endswith("/" + split) and k.split("/")[0] in sources}


def mean_macro_f1(result: dict[str, Any], split: str, sources: list[str]) -> float:
    """Mean macro-F1 over the 3-class ``split`` files of the given sources."""
    vals = [r["macro_f1"] for k, r in result.items()
            if k.endswith("/" + split) and k.split("/")[0] in sources and not r["binary"]]
    return statistics.mean(vals) if vals else 0.0

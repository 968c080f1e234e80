"""Benchmark on real text: the default bundle's student on both runtimes against its peers.

    pip install -e '.[bench]'
    python bench/run.py --data ../shared/data --build build/default --out docs/benchmarks.md

Texts are ``amazon_marc_en`` test reviews (real lengths). Each model runs in its own process
(``--one``), for a clean peak RSS; cold start is a fresh process loading the model and
classifying one text. Per model: single-text p50 and p99 at 1 and 2 threads, one 256-text call
and calls of 32 at 2 threads (texts/s), a loop of one-text calls (each the median of
``--rounds`` rounds), peak RSS, size, and macro-F1 on the 3-class test splits. ``--build`` (a
conversion build folder) adds the teacher as ONNX fp32 and int8; without it they are left out
and the report says so. The compute floor (``floor.py``) and a speed-against-macro-F1 plot close
the report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).parents[1]
TEXTS = "amazon_marc_en"
SPLITS = ("amazon_marc_en", "twitter_us_airline", "sst5_3class")
STUDENT = ("student int8 ONNX", "student int8 TFLite")
TEACHER = ("teacher ONNX fp32", "teacher ONNX int8")
PEERS = ("fastText", "TF-IDF + logistic regression", "VADER")


def load(name: str, threads: int, data: Path, build: Path | None, cache: Path) -> tuple[Any, int]:
    """(model, bytes on disk)."""
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.bundle import open_bundle

    if name in STUDENT or name in TEACHER:
        bundle = None
        if name in TEACHER:
            assert build is not None
            bundle = build / "eval_bundles" / ("teacher-fp32" if "fp32" in name else "teacher-int8")
        runtime = "tflite" if "TFLite" in name else "onnx"
        clf = SentimentClassifier.load(bundle, runtime=runtime, threads=threads)
        b = open_bundle(bundle)
        art = next(a for a in b.manifest.artifacts if a.runtime == runtime)
        return clf, art.bytes + (b.root / b.manifest.tokenizer.file).stat().st_size
    import peers

    model: Any = {"fastText": lambda: peers.FastText(data, cache),
                  "TF-IDF + logistic regression": lambda: peers.TfidfLogReg(data, cache),
                  "VADER": peers.Vader}[name]()
    return model, model.size


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def single_ms(model: Any, texts: list[str]) -> list[float]:
    """Each text in a call of its own, in ms, sorted."""
    out = []
    for t in texts:
        t0 = time.perf_counter()
        model.classify([t])
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def one(name: str, data: Path, build: Path | None, cache: Path, n: int,
        rounds: int) -> dict[str, Any]:
    """Each figure is the median over ``rounds`` rounds (one round is noisy on a shared host)."""
    from edge_sentiment.bench import peak_rss_mb
    from edge_sentiment.evaluate import evaluate, read_labeled_tsv

    texts = read_labeled_tsv(data / TEXTS / "test.tsv")[0][:n]
    out: dict[str, Any] = {"name": name, "rounds": rounds}
    for threads in (1, 2):
        model, size = load(name, threads, data, build, cache)
        model.classify(texts[:8])  # warm up
        lats = [single_ms(model, texts) for _ in range(rounds)]
        out[f"p50_ms_t{threads}"] = round(statistics.median([statistics.median(a) for a in lats]), 3)
        out[f"p99_ms_t{threads}"] = round(
            statistics.median([a[int(0.99 * (len(a) - 1))] for a in lats]), 3)
    out["loop_texts_per_s"] = round(statistics.median([len(texts) / sum(a) * 1000 for a in lats]), 1)
    calls = [texts[i:i + 256] for i in range(0, len(texts) - 255, 256)] or [texts]
    out["batch256_texts_per_s"] = round(statistics.median([
        sum(map(len, calls)) / sum(timed(lambda c=c: model.classify(c)) for c in calls)
        for _ in range(rounds)]), 1)
    out["batch32_texts_per_s"] = round(statistics.median([len(texts) / sum(
        timed(lambda s=s: model.classify(texts[s:s + 32])) for s in range(0, len(texts), 32))
        for _ in range(rounds)]), 1)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["size_mb"] = round(size / 1e6, 2)
    for src in SPLITS:
        split_texts, gold = read_labeled_tsv(data / src / "test.tsv")
        out[f"{src}_macro_f1"] = evaluate(model, split_texts, gold)[0]["macro_f1"]
    return out


def cold_start(name: str, args: argparse.Namespace) -> float:
    cmd = [sys.executable, __file__, *_common(args), "--cold", name]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return round(time.perf_counter() - t0, 2)


def _common(args: argparse.Namespace) -> list[str]:
    extra = ["--build", str(args.build)] if args.build else []
    return ["--data", str(args.data), "--cache", str(args.cache), "--n", str(args.n),
            "--rounds", str(args.rounds), *extra]


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    r = subprocess.run([sys.executable, __file__, *_common(args), "--one", name],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"bench of {name} failed:\n{r.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    row["cold_start_s"] = cold_start(name, args)
    print(json.dumps(row), file=sys.stderr)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--build", type=Path, help="a conversion build folder (adds the teacher)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "es-bench")
    ap.add_argument("--n", type=int, default=1000, help="test texts timed per model")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per figure (the median)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--cold", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.cold:
        load(args.cold, 2, args.data, args.build, args.cache)[0].classify(["A fine product."])
        return 0
    if args.one:
        print(json.dumps(one(args.one, args.data, args.build, args.cache, args.n,
                             args.rounds)))
        return 0
    names = [*STUDENT, *(TEACHER if args.build else ()), *PEERS]
    rows = [measure(name, args) for name in names]
    import floor
    import report

    from edge_sentiment.bundle import open_bundle
    from edge_sentiment.evaluate import read_labeled_tsv

    bundle = open_bundle(None)
    texts = read_labeled_tsv(args.data / TEXTS / "test.tsv")[0][:args.n]
    fl, lengths = floor.floor(bundle.root, texts)
    cmd = "python bench/run.py " + " ".join(
        a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))
    machine = f"{platform.machine()}, {_cpu()}, {os.cpu_count()} cores, Python " \
              f"{platform.python_version()}"
    report.write(rows, fl, args.out, cmd, machine, bundle.manifest.version, lengths,
                 teacher=bool(args.build))
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark report: the shipped student against the teacher and VADER, on the same texts.

    python bench/run.py --data ../shared/data --build build/default --out docs/benchmarks.md

``--build`` is the folder of a full conversion build (it holds the fine-tuned teacher and its
ONNX exports). Each model runs in its own process (clean RSS). For each: macro-F1 on the
3-class test splits, SST-2 test accuracy (binary decision), single-text p50/p99 latency,
batch-32 throughput, peak RSS and size on disk. Writes the table, the machine description
and a PNG chart of accuracy against latency.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edge_sentiment.manifest import LABELS

ROOT = Path(__file__).parents[1]
MODELS = ["student int8 ONNX", "student int8 TFLite", "teacher PyTorch fp32", "teacher ONNX fp32",
          "teacher ONNX int8 (ORT dynamic)", "VADER"]


class Vader:
    labels = LABELS

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.sia = SentimentIntensityAnalyzer()

    def classify(self, texts: list[str]) -> list[Any]:
        from edge_sentiment import Prediction

        out = []
        for t in texts:
            c = self.sia.polarity_scores(t)["compound"]
            label = "positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral"
            pos = (c + 1) / 2  # binary decision: positive iff compound >= 0
            out.append(Prediction(label, 1.0, {"negative": 1 - pos, "neutral": 0.0, "positive": pos}))
        return out


class TorchTeacher:
    labels = LABELS

    def __init__(self, build: Path) -> None:
        import torch

        from edge_sentiment_convert.teacher import Teacher, load_tokenizer, teacher_dir

        torch.set_num_threads(2)
        self.model = Teacher(3)
        self.model.load_state_dict(torch.load(build / "teacher" / "teacher.pt", weights_only=True))
        self.model.eval()
        self.tok = load_tokenizer(teacher_dir() / "tokenizer.json", 128)

    def classify(self, texts: list[str]) -> list[Any]:
        import numpy as np

        from edge_sentiment import Prediction
        from edge_sentiment_convert.teacher import predict_logits

        logits = predict_logits(self.model, self.tok, texts, batch=32, progress=False)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return [Prediction(LABELS[int(r.argmax())], float(r.max()), dict(zip(LABELS, map(float, r))))
                for r in p]


def _load(name: str, build: Path) -> tuple[Any, int]:
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.bundle import default_bundle_path

    eb = build / "eval_bundles"
    size = lambda *ps: sum(p.stat().st_size for p in ps)  # noqa: E731
    if name == "student int8 ONNX":
        b = default_bundle_path()
        return SentimentClassifier.load(runtime="onnx"), size(b / "student.int8.onnx", b / "tokenizer.json")
    if name == "student int8 TFLite":
        b = default_bundle_path()
        files = (b / "student.int8.tflite", b / "tokenizer.json")
        return SentimentClassifier.load(runtime="tflite"), size(*files)
    if name == "teacher ONNX fp32":
        return SentimentClassifier.load(eb / "teacher-fp32", runtime="onnx"), size(
            *(eb / "teacher-fp32").glob("*.onnx"))
    if name == "teacher ONNX int8 (ORT dynamic)":
        return SentimentClassifier.load(eb / "teacher-int8", runtime="onnx"), size(
            *(eb / "teacher-int8").glob("*.onnx"))
    if name == "teacher PyTorch fp32":
        return TorchTeacher(build), size(build / "teacher" / "teacher.pt")
    return Vader(), size(*Path(__import__("vaderSentiment").__file__).parent.glob("*.txt"))


def one(name: str, data: Path, build: Path) -> dict[str, Any]:
    from edge_sentiment.bench import SAMPLE_TEXTS, peak_rss_mb
    from edge_sentiment.evaluate import evaluate, read_labeled_tsv

    model, size = _load(name, build)
    lat = []
    for i in range(300):
        t0 = time.perf_counter()
        model.classify([SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]])
        lat.append((time.perf_counter() - t0) * 1000)
    batch = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] for i in range(32)]
    t0 = time.perf_counter()
    for _ in range(10):
        model.classify(batch)
    thr = 320 / (time.perf_counter() - t0)
    rss = peak_rss_mb()  # serving footprint: before the evaluation's larger batches
    scores = {}
    for src in ("amazon_marc_en", "twitter_us_airline", "sst5_3class", "amazon_alexa", "sst2"):
        texts, gold = read_labeled_tsv(data / src / "test.tsv")
        result, _ = evaluate(model, texts, gold)
        scores[src] = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}
    lat.sort()
    return {"name": name, "scores": scores, "p50_ms": round(statistics.median(lat), 3),
            "p99_ms": round(lat[int(0.99 * len(lat))], 3), "throughput_per_s": round(thr, 1),
            "peak_rss_mb": round(rss, 1), "size_mb": round(size / 1e6, 2)}


def write_report(rows: list[dict[str, Any]], out: Path, cmd: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    srcs = ["amazon_marc_en", "twitter_us_airline", "sst5_3class", "amazon_alexa", "sst2"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        f1 = statistics.mean(r["scores"][s]["macro_f1"] for s in srcs[:3]) * 100
        ax.scatter(r["p50_ms"], f1)
        ax.annotate(r["name"], (r["p50_ms"], f1), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("single-text p50 latency, ms (log)")
    ax.set_ylabel("mean macro-F1: marc, airline, sst5 (test)")
    fig.tight_layout()
    png = out.with_suffix(".png")
    fig.savefig(png, dpi=100)
    lines = ["# Benchmarks", "", f"Produced by `{cmd}` in one run, on the same texts.", "",
             f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
             f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}; each model in "
             "its own process, 2 threads. Each split cell is accuracy / macro-F1 on its test split "
             "(SST-2: the binary decision). Latency is one text, tokenization included. Peak RSS is the "
             "process after loading, 300 single texts and 10 batches of 32, measured before "
             "the evaluation runs.", "",
             "| model | marc acc / F1 | airline acc / F1 | sst5 acc / F1 | alexa acc / F1 | "
             "SST-2 acc / F1 | p50 ms | p99 ms | "
             "batch-32 texts/s | peak RSS MB | size MB |", "|---" * 11 + "|"]
    for r in rows:
        s = r["scores"]
        lines.append(f"| {r['name']} | " + " | ".join(
            f"{100 * s[k]['accuracy']:.1f} / {100 * s[k]['macro_f1']:.1f}" for k in srcs)
                     + f" | {r['p50_ms']} | {r['p99_ms']} | {r['throughput_per_s']} | "
                     f"{r['peak_rss_mb']} | {r['size_mb']} |")
    lines += ["", f"![accuracy against latency]({png.name})", ""]
    out.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--build", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.data, args.build)))
        return 0
    rows = []
    for name in MODELS:
        r = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--build",
                            str(args.build), "--one", name], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    write_report(rows, args.out, " ".join(["python", "bench/run.py", *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

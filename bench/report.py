"""``docs/benchmarks.md`` and its plot, from the rows and the floor ``run.py`` measured."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

SPLITS = ("amazon_marc_en", "twitter_us_airline", "sst5_3class")


def mean_f1(row: dict[str, Any]) -> float:
    return 100 * statistics.mean(float(row[f"{s}_macro_f1"]) for s in SPLITS)


def plot(rows: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        ax.scatter(r["p50_ms_t1"], mean_f1(r))
        ax.annotate(r["name"], (r["p50_ms_t1"], mean_f1(r)), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("single-text p50, ms, 1 thread (log; amazon_marc_en test texts)")
    ax.set_ylabel("mean macro-F1: marc, airline, sst5 (test)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def targets(rows: list[dict[str, Any]], fl: dict[str, Any]) -> list[str]:
    onnx = next(r for r in rows if r["name"] == "student int8 ONNX")
    tfl = next(r for r in rows if r["name"] == "student int8 TFLite")
    floor1 = fl["threads1"]["floor_us"] / 1000
    rate2 = fl["threads2"]["floor_batched_texts_per_s"]
    checks = [
        (f"student ONNX single-text p50 at 1 thread {onnx['p50_ms_t1']:.3f} ms = "
         f"{onnx['p50_ms_t1'] / floor1:.2f}x the floor ({floor1:.3f} ms); target <= 1.5x",
         onnx["p50_ms_t1"] <= 1.5 * floor1),
        (f"one 256-text call, 2 threads: {onnx['batch256_texts_per_s']:.0f} texts/s = "
         f"{onnx['batch256_texts_per_s'] / rate2:.0%} of the floor rate ({rate2:.0f}/s); "
         "target >= 50%", onnx["batch256_texts_per_s"] >= 0.5 * rate2),
        (f"the same call against a loop of one-text calls: "
         f"{onnx['batch256_texts_per_s'] / onnx['loop_texts_per_s']:.2f}x; target >= 1.5x",
         onnx["batch256_texts_per_s"] >= 1.5 * onnx["loop_texts_per_s"]),
        (f"TFLite single-text p50 {tfl['p50_ms_t1']:.3f} ms at most ONNX's "
         f"{onnx['p50_ms_t1']:.3f} (1 thread)", tfl["p50_ms_t1"] <= onnx["p50_ms_t1"]),
    ]
    return [f"- {'met' if ok else '**missed**'}: {what}" for what, ok in checks]


def write(rows: list[dict[str, Any]], fl: dict[str, Any], out: Path, cmd: str, machine: str,
          version: str, lengths: list[int], teacher: bool) -> None:
    png = out.with_suffix(".png")
    plot(rows, png)
    q = statistics.quantiles(lengths, n=10)
    lines = [
        "# Benchmarks", "",
        f"Produced by `{cmd}` in one run (`pip install -e '.[bench]'` first).", "",
        f"Machine: {machine}. Default bundle {version}. Texts: {len(lengths)} amazon_marc_en "
        f"test reviews, median {statistics.median(lengths):.0f} tokens (10th percentile "
        f"{q[0]:.0f}, 90th {q[-1]:.0f}). Each model in its own process. p50 and p99: one text "
        "per call, tokenizing included. Batched: one 256-text call and calls of 32, 2 threads; "
        "loop: one-text calls, 2 threads. Each timing is the median of "
        f"{rows[0].get('rounds', 1)} rounds. Cold start: a fresh process importing, loading and "
        "classifying one text. Macro-F1 on the 3-class test splits. fastText and TF-IDF + "
        "logistic regression are trained by the script on the same train splits as the "
        "teacher.", "",
        "| model | p50 ms 1t | p99 ms 1t | p50 ms 2t | p99 ms 2t | 256-call texts/s | "
        "32-calls texts/s | loop texts/s | peak RSS MB | cold start s | size MB | marc F1 | "
        "airline F1 | sst5 F1 |", "|---" * 14 + "|"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['p50_ms_t1']} | {r['p99_ms_t1']} | {r['p50_ms_t2']} | "
            f"{r['p99_ms_t2']} | {r['batch256_texts_per_s']:.0f} | "
            f"{r['batch32_texts_per_s']:.0f} | {r['loop_texts_per_s']:.0f} | "
            f"{r['peak_rss_mb']} | {r['cold_start_s']} | {r['size_mb']} | "
            + " | ".join(f"{100 * r[f'{s}_macro_f1']:.1f}" for s in SPLITS) + " |")
    if not teacher:
        lines += ["", "The teacher rows need `--build BUILD` (a conversion build folder)."]
    t1, t2 = fl["threads1"], fl["threads2"]
    lines += [
        "", "## The compute floor (student int8 ONNX)", "",
        f"- {fl['macs_per_token']:,} multiply-accumulates per token at the median length "
        f"({fl['median_tokens']} tokens: {fl['macs_median_text']:,} in all), counted from the "
        "graph's MatMul shapes.",
        f"- A bare dynamic-int8 MatMul of the model's main shape {fl['matmul_shape']} at "
        f"{fl['median_tokens']} rows: {t1['int8_matmul_gmacs']} GMAC/s on 1 thread, "
        f"{t2['int8_matmul_gmacs']} on 2.",
        f"- Tokenizing one review: {fl['tokenize_us']} µs; an empty ONNX Runtime call: "
        f"{t1['empty_call_us']} µs (1 thread), {t2['empty_call_us']} µs (2).",
        f"- Floor for the median review: {t1['floor_us']} µs on 1 thread, {t2['floor_us']} µs "
        f"on 2; batched (call overhead shared): {t2['floor_batched_texts_per_s']} texts/s on 2.",
        "", "## Against the speed issue's targets", "", *targets(rows, fl),
        "", f"![speed against macro-F1]({png.name})", ""]
    out.write_text("\n".join(lines), encoding="utf-8")

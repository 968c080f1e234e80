"""Evaluate artifacts through the real runtime, measure speed, write the model card."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_sentiment import SentimentClassifier
from edge_sentiment.errors import BackendError
from edge_sentiment.evaluate import evaluate, read_labeled_tsv

from .data import eval_splits

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


def _fmt(r: dict[str, Any]) -> str:
    key = "accuracy" if r["binary"] else "macro_f1"
    return f"{100 * r[key]:.1f}"


def _choice_rule(ctx: dict[str, Any]) -> str:
    """The sentence saying how the build chose among the candidates."""
    teacher = ", ".join(f"{src} {100 * f1:.1f}" for src, f1 in ctx.get("teacher_dev", {}).items())
    lines = f"Teacher fp32 dev scores (macro-F1; SST-2: binary accuracy): {teacher}. " \
        if teacher else ""
    if ctx.get("max_dev_gap"):
        return (f"{lines}Chosen: the fastest candidate at most {ctx['max_dev_gap']:.1f} points "
                f"behind the teacher on the dev split of each of {', '.join(ctx['gap_sources'])} "
                f"(`max_dev_gap`; p50s within {100 * ctx['speed_tie']:.0f}% of the fastest such "
                "one count as a tie, broken by mean dev macro-F1), else the best mean dev "
                "macro-F1. 'Behind teacher' is the largest such gap.")
    return f"{lines}Chosen: the best mean dev macro-F1."


def card(ctx: dict[str, Any]) -> str:
    """The model card: every figure the build measured, and how to reproduce it."""
    evals: dict[str, dict[str, Any]] = ctx["evals"]
    names = list(evals)
    splits = list(next(iter(evals.values())))
    lines = [f"# {ctx['name']} {ctx['version']}", "",
             "Three-class sentiment (negative / neutral / positive) for short English reviews and "
             "posts, distilled from all-MiniLM-L6-v2 for ARM boards.", "",
             "## How it was made", "", f"    {ctx['command']}", "",
             f"Config (`{ctx['config_name']}`):", "", "```toml", ctx["config_text"].strip(), "```",
             "", f"Full build time: {ctx['build_minutes']:.1f} minutes on this machine "
             f"({ctx['machine']}). Stage times: {ctx['stage_seconds']}.", "",
             "## Student candidates (Pareto table)", "",
             _choice_rule(ctx), "",
             "| student | params | int8 ONNX MB | p50 ms (1 text) | dev macro-F1 | behind teacher |",
             "|---|---|---|---|---|---|"]
    for row in ctx["pareto"]:
        behind = row.get("dev_points_behind_teacher")
        lines.append(f"| {row['name']}{' **(chosen)**' if row['chosen'] else ''} | "
                     f"{row['params'] / 1e6:.2f} M | {row['onnx_int8_mb']:.2f} | {row['p50_ms']:.3f} | "
                     f"{100 * row['dev_macro_f1']:.1f} | "
                     f"{'' if behind is None else f'{behind:.1f}'} |")
    lines += ["", "## Evaluation", "",
              "Macro-F1 for 3-class splits; accuracy of the binary decision "
              "(P(positive) vs P(negative)) for SST-2. Reproduce a row with "
              "`edge-sentiment eval --data <split>.tsv --runtime onnx|tflite`.", "",
              "| split | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for split in splits:
        lines.append(f"| {split} | " + " | ".join(_fmt(evals[n][split]) for n in names) + " |")
    lines += ["", "Macro-recall and per-class precision / recall / F1 are in `evaluation.json`.", "",
              "## Agreement of ONNX int8 and TFLite int8", ""]
    lines += [f"- {k}: {100 * v:.2f}%" for k, v in ctx["agreement"].items()]
    tfl = ctx.get("tflite", {})
    if tfl.get("dev_agreement"):
        lines += ["", "TFLite quantization (the faster dynamic int8 unless it agrees with ONNX int8 "
                  "on fewer than 99% of dev predictions): "
                  + ", ".join(f"{m} {100 * a:.2f}%" for m, a in tfl["dev_agreement"].items())
                  + f" -> **{tfl['mode']}**."]
    lines += ["", "## Sizes", ""] + [f"- {k}: {v / 1e6:.2f} MB" for k, v in ctx["sizes"].items()]
    rounds = next(iter(ctx["speed"].values())).get("rounds", 1)
    lines += ["", "## Speed (single text, tokenization included, same build)", "",
              f"`edge-sentiment bench --bundle <artifact> --runtime <runtime> --json`, each run its "
              f"own process, the models taking turns; median of {rounds} rounds.", "",
              "| model | p50 ms | p95 ms | batch-32 texts/s |", "|---|---|---|---|"]
    for k, v in ctx["speed"].items():
        lines.append(f"| {k} | {v['p50_ms']:.3f} | {v['p95_ms']:.3f} | {v['throughput_per_s_batch32']} |")
    lines += ["", ctx["speed_summary"], *_real_speed(ctx)]
    lines += ["", "## Confusion matrices (3-class test splits, summed)", ""]
    lines += [f"![{n}]({png})" for n, png in ctx["pngs"].items()]
    lines += ["", "## Targets (from the conversion issue), checked by the build", ""]
    lines += [f"- {'met' if ok else '**missed**'}: {what}" for what, ok in targets(ctx)]
    lines += ["", "## Limits", "",
              "English only. Trained on product reviews, airline tweets and SST; other "
              "domains (medical, legal, code) are untested. Neutral is the hardest class: see the "
              "per-class figures in `evaluation.json`. Texts past 128 tokens are truncated."]
    return "\n".join(lines) + "\n"


def _real_speed(ctx: dict[str, Any]) -> list[str]:
    """The same models timed on a dev split's texts (``--texts``): real review lengths, where
    the built-in samples are 9-15 tokens."""
    if not ctx.get("speed_real"):
        return []
    where, spd = ctx["speed_real"]
    tokens = spd["student int8 (ONNX)"].get("mean_tokens")
    lines = ["", f"The same, on the texts of `{where}` (`--texts`; {tokens} student tokens per "
             "text on average, the built-in samples have 9-15):", "",
             "| model | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {k} | {v['p50_ms']:.3f} | {v['p95_ms']:.3f} |" for k, v in spd.items()]
    return lines


def _speed_targets(spd: dict[str, Any], where: str) -> list[tuple[str, bool]]:
    s = spd["student int8 (ONNX)"]["p50_ms"]
    out = []
    for name, need in (("teacher fp32 (ONNX)", 10.0), ("teacher int8 (ONNX)", 4.0)):
        ratio = spd[name]["p50_ms"] / s
        out.append((f"student int8 ONNX {ratio:.1f}x faster than {name} (>= {need:.0f}x){where}",
                    ratio >= need))
    return out


def targets(ctx: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each measurable target of the default bundle, with whether this build met it. Scores are
    rounded to the two decimals printed before they are compared, so a verdict never disagrees
    with its figure (float noise made a 2.00-point gap "missed")."""
    ev, sizes, spd = ctx["evals"], ctx["sizes"], ctx["speed"]
    teacher = ev["teacher fp32 (ONNX)"]
    out = [(f"int8 ONNX {sizes['student int8 ONNX'] / 1e6:.2f} MB <= 8 MB",
            sizes["student int8 ONNX"] <= 8e6),
           (f"int8 TFLite {sizes['student int8 TFLite'] / 1e6:.2f} MB <= 8 MB",
            sizes["student int8 TFLite"] <= 8e6)]
    for art in ("student int8 (ONNX)", "student int8 (TFLite)"):
        for split in ("amazon_marc_en/test", "sst5_3class/test", "twitter_us_airline/test"):
            if split in teacher:
                gap = round(100 * (teacher[split]["macro_f1"] - ev[art][split]["macro_f1"]), 2)
                out.append((f"{art} within 2.0 macro-F1 of the teacher on {split}: "
                            f"{gap:+.2f} points behind", gap <= 2.0))
    if "sst2/dev" in teacher:
        for art in ("student int8 (ONNX)", "student int8 (TFLite)"):
            acc = round(100 * ev[art]["sst2/dev"]["accuracy"], 2)
            out.append((f"{art} SST-2 dev accuracy {acc:.2f} >= 88.0", acc >= 88.0))
    agree = ctx["agreement"].get("all_test", 0.0)
    out.append((f"ONNX int8 and TFLite int8 agree on {100 * agree:.2f}% >= 99% of test predictions",
                agree >= 0.99))
    out += _speed_targets(spd, "")
    if ctx.get("speed_real"):
        where, real = ctx["speed_real"]
        out += _speed_targets(real, f" on {where}")
    minutes = ctx["build_minutes"]
    out.append((f"full build {minutes:.0f} minutes <= 150", minutes <= 150))
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

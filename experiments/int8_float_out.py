"""The shipped static int8 ONNX student four ways, side by side, one text at a time:

    python experiments/int8_float_out.py --texts ../shared/data/amazon_marc_en/dev.tsv \\
        [--model edge_sentiment/default_bundle/student.int8.onnx] [--out experiments/cards/int8_float_out.md]

- ``plain``: ONNX Runtime's own session (every graph rewrite it has, SkipLayerNormFusion too);
- ``backend``: the session ``backends.onnx.open_session`` makes (SkipLayerNormFusion left out);
- ``fused``: the same file rewritten by ``int8_graph.fuse_file`` (``onnx_graph = "fused"``: each
  weight product giving float, convolutions as uint8 taps and one product, and since bundle 2.7.0
  each attention block one QAttention), backend session;
- ``fused, attention as nodes``: the same without the QAttention step (as bundle 2.6.1 shipped).

For each: the nodes ONNX Runtime runs, the median CPU µs per text (``time.thread_time``, 1 intra-op
thread; median of interleaved rounds: ``graph_lean.session_timings``), and uncalibrated macro-F1
and label agreement against ``plain`` on the texts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "convert"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

import graph_lean  # noqa: E402  (its interleaved CPU-time timings)

LABELS = ("negative", "neutral", "positive")


def sessions(model: Path, tmp: Path) -> dict[str, tuple[Any, Counter[str]]]:
    import onnx
    import onnxruntime as ort

    from edge_sentiment.backends.onnx import open_session
    from edge_sentiment_convert import int8_graph
    from edge_sentiment_convert.int8_graph import fuse_file

    def ran(opt: Path) -> Counter[str]:
        return Counter(n.op_type for n in onnx.load(str(opt)).graph.node)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = str(tmp / "plain.opt.onnx")
    out = {"plain": (ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"]),
                     ran(tmp / "plain.opt.onnx"))}
    fused = fuse_file(model, tmp / "fused.onnx")
    step, int8_graph.fuse_attention = int8_graph.fuse_attention, lambda g: 0
    try:
        nodes = fuse_file(model, tmp / "fused-nodes.onnx")
    finally:
        int8_graph.fuse_attention = step
    for name, path in (("backend", model), ("fused, attention as nodes", nodes),
                       ("fused", fused)):
        s = open_session(path, "CPUExecutionProvider", 1, optimized=tmp / f"{len(out)}.opt.onnx")
        out[name] = (s, ran(tmp / f"{len(out)}.opt.onnx"))
    return out


def macro_f1(gold: list[int], pred: np.ndarray) -> float:
    scores = []
    for c in range(len(LABELS)):
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return 100 * sum(scores) / len(scores)


def main() -> int:
    from tokenizers import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=Path, required=True)
    ap.add_argument("--model", type=Path,
                    default=ROOT / "edge_sentiment/default_bundle/student.int8.onnx")
    ap.add_argument("--tokenizer", type=Path,
                    default=ROOT / "edge_sentiment/default_bundle/tokenizer.json")
    ap.add_argument("--n", type=int, default=300, help="texts timed")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = [line.rsplit("\t", 1) for line in args.texts.read_text().splitlines()[1:]]
    tok = Tokenizer.from_file(str(args.tokenizer))
    tok.enable_truncation(128)
    ids = [np.array([e.ids], dtype=np.int64) for e in tok.encode_batch([r[0] for r in rows])]
    feeds = [{"input_ids": i, "attention_mask": np.ones_like(i)} for i in ids]
    gold = [LABELS.index(r[1]) for r in rows]
    lines = [f"# Static int8 student, four ways: {args.model.name}", "",
             f"{len(rows)} texts of {args.texts}; times over the first {args.n}, 1 thread, "
             f"CPU µs per text (median over texts, median of {args.rounds} interleaved rounds)",
             "", "| form | nodes run | µs per text | macro-F1 (uncalibrated) | same label as plain "
             "| largest logit difference |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as t:
        made = sessions(args.model, Path(t))
        runs = {k: s for k, (s, _) in made.items()}
        times = graph_lean.session_timings(runs, feeds[: args.n], args.rounds)
        logits = {k: np.concatenate([s.run(None, f)[0] for f in feeds]) for k, s in runs.items()}
    for name, (_, kinds) in made.items():
        got, ref = logits[name], logits["plain"]
        lines.append(f"| {name} | {sum(kinds.values())} | {times[name]:.0f} | "
                     f"{macro_f1(gold, got.argmax(1)):.2f} | "
                     f"{100 * (got.argmax(1) == ref.argmax(1)).mean():.2f}% | "
                     f"{np.abs(got - ref).max():.4f} |")
    lines += ["", "Node types run:", "", *(f"- {k}: " + ", ".join(
        f"{op} {n}" for op, n in kinds.most_common()) for k, (_, kinds) in made.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

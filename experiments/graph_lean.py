"""Where a single text's time goes in the static int8 student, and what a leaner graph saves.

    python experiments/graph_lean.py --texts ../shared/data/amazon_marc_en/dev.tsv \\
        [--weights build/default/students/<name>/student.pt \\
         --tokenizer build/default/vocab/tokenizer.json] --out experiments/cards/graph_lean.md

For each graph form it static-quantizes the fp32 export (the build's ``quantize_onnx_static``,
calibrated on 256 of the texts), lists the node types of the graph ONNX Runtime actually runs
(after its own optimizations, 1 thread), profiles per node type, and times one text at a time
(median over the texts, interleaved rounds). Forms:

- ``slices``: the shipped export, each convolution as Pad, three Slices, Concat and one MatMul;
- ``conv``: the same weights exported as one ``Conv`` per layer (``export_onnx(conv=True)``,
  opset 20, whose ``Gelu`` node ONNX Runtime fuses), quantized to ``QLinearConv``, which ONNX
  Runtime runs channels-last.

Times are the calling thread's CPU time (``time.thread_time``; ONNX Runtime with one intra-op
thread computes on it), so a busy machine inflates them less than wall time.
Without ``--weights`` it exports a randomly initialised student of the default config's shape.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "convert"))
sys.path.insert(0, str(ROOT))


def student(weights: Path | None, out: Path, conv: bool, vocab: int) -> Path:
    import torch

    from edge_sentiment_convert.config import load_config
    from edge_sentiment_convert.export import export_onnx
    from edge_sentiment_convert.students import make_student

    cfg = load_config(ROOT / "convert/configs/default.toml")
    torch.manual_seed(0)
    model = make_student(cfg.students[0], vocab, cfg.max_seq_length)
    if weights is not None:  # the trained student of a build
        model.load_state_dict(torch.load(weights, weights_only=True))
    return export_onnx(model, out, opset=20 if conv else 17, conv=conv)


def tokenize(tokenizer: Path, texts: list[str]) -> list[np.ndarray]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(128)
    return [np.array([e.ids], dtype=np.int64) for e in tok.encode_batch(texts)]


def vocab_size(tokenizer: Path) -> int:
    from tokenizers import Tokenizer

    return int(Tokenizer.from_file(str(tokenizer)).get_vocab_size())


def quantize(fp32: Path, out: Path, ids: list[np.ndarray]) -> Path:
    from edge_sentiment_convert.export import quantize_onnx_static

    feeds = [{"input_ids": i, "attention_mask": np.ones_like(i)} for i in ids[:256]]
    return quantize_onnx_static(fp32, out, feeds)


def session(path: Path, profile: str | None = None, optimized: Path | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    if optimized:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def node_types(path: Path, tmp: Path) -> Counter[str]:
    import onnx

    opt = tmp / f"{path.stem}.opt.onnx"
    session(path, optimized=opt)
    return Counter(n.op_type for n in onnx.load(str(opt)).graph.node)


def profile(path: Path, ids: list[np.ndarray], tmp: Path) -> dict[str, float]:
    s = session(path, profile=str(tmp / path.stem))
    for i in ids:
        s.run(None, {"input_ids": i, "attention_mask": np.ones_like(i)})
    events = json.loads(Path(s.end_profiling()).read_text())
    per: Counter[str] = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per[e["args"]["op_name"]] += e["dur"]
    total = sum(per.values())
    return {op: 100.0 * us / total for op, us in per.most_common()}


def timings(paths: dict[str, Path], ids: list[np.ndarray], rounds: int = 5
            ) -> dict[str, float]:
    feeds = [{"input_ids": i, "attention_mask": np.ones_like(i)} for i in ids]
    return session_timings({k: session(p) for k, p in paths.items()}, feeds, rounds)


def session_timings(sessions: dict[str, Any], feeds: list[dict[str, np.ndarray]],
                    rounds: int = 5) -> dict[str, float]:
    """Median CPU µs per call over ``feeds`` for each session, median of interleaved rounds."""
    per: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            times = []
            for feed in feeds:
                t = time.thread_time_ns()
                s.run(None, feed)
                times.append(time.thread_time_ns() - t)
            per[k].append(statistics.median(times) / 1e3)
    return {k: statistics.median(v) for k, v in per.items()}


def agreement(a: Path, b: Path, ids: list[np.ndarray]) -> tuple[float, float]:
    sa, sb = session(a), session(b)
    same, diff = 0, 0.0
    for i in ids:
        feed = {"input_ids": i, "attention_mask": np.ones_like(i)}
        la, lb = sa.run(None, feed)[0], sb.run(None, feed)[0]
        same += int(la.argmax() == lb.argmax())
        diff = max(diff, float(np.abs(la - lb).max()))
    return same / len(ids), diff


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path,
                    default=ROOT / "edge_sentiment/default_bundle/tokenizer.json")
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = [line.rsplit("\t", 1)[0] for line in args.texts.read_text().splitlines()[1:]]
    ids = tokenize(args.tokenizer, rows[: args.n + 256])
    calib, ids = ids[args.n:], ids[: args.n]
    lines = [f"# Leaner graph: {args.weights or 'random weights, default shape'}", ""]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        forms = {}
        for form in ("slices", "conv"):
            fp32 = student(args.weights, tmp / f"{form}.fp32.onnx", conv=form == "conv",
                           vocab=vocab_size(args.tokenizer))
            forms[form] = quantize(fp32, tmp / f"{form}.onnx", calib)
        for form, path in forms.items():
            kinds = node_types(path, tmp)
            share = profile(path, ids[:100], tmp)
            lines += [f"## {form}: {sum(kinds.values())} nodes", "",
                      ", ".join(f"{k} {v}" for k, v in kinds.most_common()), "",
                      "time share: " + ", ".join(f"{k} {v:.1f}%" for k, v in share.items()), ""]
        times = timings(forms, ids)
        same, diff = agreement(forms["slices"], forms["conv"], ids)
        lines += ["## one text at a time, 1 thread (median CPU µs over the texts, median of 5 rounds)",
                  "", *(f"- {k}: {v:.0f}" for k, v in times.items()),
                  f"- conv against slices: same label on {100 * same:.2f}%, largest logit "
                  f"difference {diff:.4f}", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Batch independence: does a text get the same scores alone and in a batch?

    python experiments/batch_independence.py --fp32 build/default/students/<name>/student.fp32.onnx \\
        --tokenizer build/default/vocab/tokenizer.json --texts ../shared/data/amazon_marc_en/dev.tsv \\
        --out experiments/cards/batch_independence.md

Dynamic int8 (``quantize_dynamic``, the shipped form) quantizes each MatMul's activations with one
scale per call, so a text's scores depend on its batch neighbours. ``MatMulNBits`` with 8-bit
blockwise weights and ``accuracy_level = 4`` quantizes activations per block of one row, so a
row's result cannot depend on the other rows. For each form: the share of texts whose label
differs alone and in length-sorted batches of 32, the largest score difference, the label
agreement with fp32, and single-text and batch-32 latency on 1 thread.
Without ``--fp32`` it exports a randomly initialised student of the default config's shape.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]


def quantize_nbits(fp32: Path, out: Path, bits: int = 8, block: int = 32) -> Path:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    cfg = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=4,
                                       bits=bits)
    q = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=bits, block_size=block,
                             is_symmetric=True, accuracy_level=4, algo_config=cfg)
    q.process()
    q.model.save_model_to_file(str(out), use_external_data_format=False)
    return out


def random_student(out: Path) -> Path:
    sys.path.insert(0, str(ROOT / "convert"))
    from edge_sentiment_convert.config import load_config
    from edge_sentiment_convert.export import export_onnx
    from edge_sentiment_convert.students import make_student

    cfg = load_config(ROOT / "convert/configs/default.toml")
    spec = cfg.students[0]
    model = make_student(spec, 20000, cfg.max_seq_length)
    return export_onnx(model, out)


def session(path: Path) -> object:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run(sess: object, rows: list[list[int]]) -> np.ndarray:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = r, 1
    out: np.ndarray = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]  # type: ignore[attr-defined]
    return out


def measure(path: Path, rows: list[list[int]]) -> dict[str, float]:
    sess = session(path)
    alone = np.concatenate([run(sess, [r]) for r in rows])
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    batched = np.zeros_like(alone)
    for s in range(0, len(order), 32):
        idx = order[s:s + 32]
        batched[idx] = run(sess, [rows[i] for i in idx])
    single = []
    for r in rows[:300]:
        t = time.perf_counter()
        run(sess, [r])
        single.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    for s in range(0, len(order), 32):
        run(sess, [rows[i] for i in order[s:s + 32]])
    per_text = (time.perf_counter() - t) * 1e6 / len(rows)

    def probs(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return {"label_changes_pct": 100 * float((alone.argmax(1) != batched.argmax(1)).mean()),
            "max_prob_diff": float(np.abs(probs(alone) - probs(batched)).max()),
            "p50_ms": statistics.median(single), "batch32_us_per_text": per_text,
            "labels": alone.argmax(1)}  # type: ignore[dict-item]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fp32", type=Path)
    ap.add_argument("--tokenizer", type=Path)
    ap.add_argument("--texts", type=Path)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from tokenizers import Tokenizer

    sys.path.insert(0, str(ROOT / "convert"))
    from edge_sentiment_convert.export import quantize_onnx

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32 = args.fp32 or random_student(work / "fp32.onnx")
        if args.tokenizer and args.texts:
            tok = Tokenizer.from_file(str(args.tokenizer))
            tok.no_padding()
            tok.enable_truncation(128)
            lines = args.texts.read_text().splitlines()[1:args.n + 1]
            rows = [e.ids for e in tok.encode_batch([ln.rsplit("\t", 1)[0] for ln in lines])]
        else:
            rng = np.random.default_rng(0)
            rows = [list(rng.integers(5, 20000, int(rng.integers(8, 100)))) for _ in range(args.n)]
        forms = {"fp32": fp32, "dynamic int8 (shipped)": quantize_onnx(fp32, work / "dyn.onnx", False),
                 "dynamic int8 per-channel": quantize_onnx(fp32, work / "dynpc.onnx", True),
                 "MatMulNBits 8-bit, block 32, acc4": quantize_nbits(fp32, work / "nb8.onnx"),
                 "MatMulNBits 4-bit, block 32, acc4": quantize_nbits(fp32, work / "nb4.onnx", 4)}
        res = {name: measure(path, rows) for name, path in forms.items()}
        sizes = {name: path.stat().st_size / 1e6 for name, path in forms.items()}
    ref = res["fp32"]["labels"]
    lines = ["| form | labels changed alone vs batch-32 (%) | max prob diff | agreement with fp32 (%) "
             "| single p50 ms (1 thread) | batch-32 us/text | MB |", "|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        agree = 100 * float((r["labels"] == ref).mean())  # type: ignore[operator]
        lines.append(f"| {name} | {r['label_changes_pct']:.2f} | {r['max_prob_diff']:.2e} | "
                     f"{agree:.2f} | {r['p50_ms']:.3f} | {r['batch32_us_per_text']:.0f} | "
                     f"{sizes[name]:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text("# Batch independence of the quantized forms\n\n`python "
                            "experiments/batch_independence.py " + " ".join(sys.argv[1:])
                            + "`\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

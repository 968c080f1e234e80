"""4-bit token embeddings in the shipped ONNX student: is the smaller file free?

    python experiments/embedding_4bit.py edge_sentiment/default_bundle build/emb4 --data ../shared/data

The static int8 student gathers its token embedding from a uint8 table with one scale
(21,395 x 128, 2.7 MB of the 5.8 MB file). This rewrites that Gather as ONNX Runtime's
``GatherBlockQuantized`` (com.microsoft) over a 4-bit table with one scale per block of
``--block`` values of a row, followed by a QuantizeLinear back to the uint8 scale the next
QLinearMatMul expects, writes the bundle with that file to OUT (ONNX artifact only), and prints
the size, every dev split's score for both files and the model time per text of both
(``graph_lean.timings``: one text per call, thread CPU time, 1 thread, median of 5
interleaved rounds).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
import graph_lean  # noqa: E402  (its interleaved CPU-time timings)


def four_bit(model_path: Path, out: Path, block: int) -> dict[str, float]:
    """Rewrite the embedding Gather of ``model_path`` into ``out``; the table's error."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    node = next(n for n in g.node if n.op_type == "Gather" and n.input[0] in inits
                and inits[n.input[0]].data_type == onnx.TensorProto.UINT8)
    table_name = node.input[0]
    base = table_name.removesuffix("_quantized")
    q = numpy_helper.to_array(inits[table_name]).astype(np.float32)
    scale = float(numpy_helper.to_array(inits[f"{base}_scale"]))
    zero = float(numpy_helper.to_array(inits[f"{base}_zero_point"]))
    table = (q - zero) * scale
    rows, width = table.shape
    blocks = table.reshape(rows, width // block, block)
    scales = np.abs(blocks).max(axis=2) / 7.0
    scales[scales == 0] = 1.0
    nibbles = np.clip(np.round(blocks / scales[:, :, None]), -8, 7).astype(np.int16)
    back = (nibbles * scales[:, :, None]).reshape(rows, width)
    packed_vals = (nibbles.reshape(rows, width) + 8).astype(np.uint8)
    packed = (packed_vals[:, 0::2] | (packed_vals[:, 1::2] << 4)).astype(np.uint8)
    g.initializer.remove(inits[table_name])
    g.initializer.extend([numpy_helper.from_array(packed, f"{base}_q4"),
                          numpy_helper.from_array(scales.astype(np.float32), f"{base}_q4_scale")])
    idx = list(g.node).index(node)
    g.node.remove(node)
    gathered = f"{node.output[0]}_float"
    g.node.insert(idx, helper.make_node(
        "GatherBlockQuantized", [f"{base}_q4", node.input[1], f"{base}_q4_scale"], [gathered],
        domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=block, bits=4))
    g.node.insert(idx + 1, helper.make_node("QuantizeLinear", [gathered, f"{base}_scale",
                                                               f"{base}_zero_point"],
                                            [node.output[0]]))
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(out))
    err = np.abs(back - table)
    return {"table_mean_abs_err": float(err.mean()), "table_max_abs_err": float(err.max()),
            "row_norm": float(np.linalg.norm(table, axis=1).mean())}


def write_bundle(src: Path, dst: Path, onnx_file: Path) -> Path:
    from edge_sentiment.bundle import sha256_file

    manifest = json.loads((src / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["runtime"] == "onnx"]
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / manifest["tokenizer"]["file"], dst / manifest["tokenizer"]["file"])
    art = manifest["artifacts"][0]
    shutil.copy(onnx_file, dst / art["file"])
    art["sha256"], art["bytes"] = sha256_file(dst / art["file"]), (dst / art["file"]).stat().st_size
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return dst


def dev_scores(bundle: Path, data: Path) -> dict[str, float]:
    from edge_sentiment import SentimentClassifier
    from edge_sentiment.evaluate import evaluate, read_labeled_tsv

    clf = SentimentClassifier.load(bundle, runtime="onnx")
    out = {}
    for split in sorted(data.glob("*/dev.tsv")):
        texts, gold = read_labeled_tsv(split)
        scored, _ = evaluate(clf, texts, gold)
        out[split.parent.name] = round(100 * (scored["accuracy"] if scored["binary"]
                                              else scored["macro_f1"]), 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--block", type=int, default=32)
    args = ap.parse_args()
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    src = args.bundle / next(a["file"] for a in manifest["artifacts"] if a["runtime"] == "onnx")
    args.out.mkdir(parents=True, exist_ok=True)
    rewritten = args.out / "student.q4emb.onnx"
    err = four_bit(src, rewritten, args.block)
    bundle = write_bundle(args.bundle, args.out / "bundle", rewritten)
    print(json.dumps({"block": args.block, **err, "bytes_int8": src.stat().st_size,
                      "bytes_q4": rewritten.stat().st_size}))
    base, mine = dev_scores(args.bundle, args.data), dev_scores(bundle, args.data)
    print("| dev | int8 table | 4-bit table |\n|---|---|---|")
    for k in base:
        print(f"| {k} | {base[k]:.2f} | {mine[k]:.2f} |")
    print(f"| mean | {statistics.mean(base.values()):.2f} | {statistics.mean(mine.values()):.2f} |")
    from edge_sentiment.evaluate import read_labeled_tsv

    texts = read_labeled_tsv(args.data / "amazon_marc_en" / "dev.tsv")[0][:300]
    ids = graph_lean.tokenize(args.bundle / manifest["tokenizer"]["file"], texts)
    print("model CPU us per text (int8, 4-bit):",
          {k: round(v) for k, v in graph_lean.timings({"int8": src, "4-bit": rewritten}, ids).items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does fusing the conv layers' residual Add + LayerNormalization into ONNX Runtime's
SkipLayerNormalization make the conv-form student faster?

    python experiments/skip_layernorm.py --texts ../shared/data/amazon_marc_en/dev.tsv

ORT fuses Add + LayerNormalization only when both Add inputs have the same known or named
dims. After a Conv the sequence dim is unnamed, so only the attention layer's pairs fuse. This
writes the graph's [batch, length, hidden] into the value_info of each conv layer's Add and
LayerNormalization tensors (a conv layer keeps the length), checks that ORT then fuses them, and
times both int8 graphs (random weights, default shape, static int8, 1 thread, CPU time per text
via ``time.thread_time``, rounds interleaved).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import graph_lean


def annotate(src: Path, dst: Path, hidden: int = 384) -> None:
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(src))
    dims = [d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]
    made = {o: n for n in m.graph.node for o in n.output}
    names: list[str] = []
    for n in m.graph.node:
        add = made.get(n.input[0])
        if n.op_type == "LayerNormalization" and add is not None and add.op_type == "Add":
            names += [*add.input, add.output[0], n.output[0]]
    keep = [v for v in m.graph.value_info if v.name not in names]
    del m.graph.value_info[:]
    m.graph.value_info.extend(keep)
    m.graph.value_info.extend(helper.make_tensor_value_info(x, TensorProto.FLOAT, [*dims, hidden])
                              for x in dict.fromkeys(names))
    onnx.save(m, str(dst))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path,
                    default=Path(__file__).parents[1] / "edge_sentiment/default_bundle/tokenizer.json")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    lines = args.texts.read_text(encoding="utf-8").splitlines()[1:args.n + 1]
    vocab = 20000
    ids = [np.minimum(i, vocab - 1) for i in
           graph_lean.tokenize(args.tokenizer, [t.split("\t")[0] for t in lines])]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fp32 = graph_lean.student(None, tmp / "conv.fp32.onnx", True, vocab)
        plain = graph_lean.quantize(fp32, tmp / "plain.onnx", ids)
        fused = tmp / "fused.onnx"
        annotate(plain, fused)
        sessions = {p.stem: graph_lean.session(p) for p in (plain, fused)}
        for p in (plain, fused):
            kinds = graph_lean.node_types(p, tmp)
            print(p.stem, "SkipLayerNormalization", kinds["SkipLayerNormalization"],
                  "LayerNormalization", kinds["LayerNormalization"], "nodes", sum(kinds.values()))
        diff, us = 0.0, {k: [] for k in sessions}
        for _ in range(args.rounds):
            for name, s in sessions.items():
                t = []
                for x in ids:
                    feed = {"input_ids": x, "attention_mask": np.ones_like(x)}
                    t0 = time.thread_time()
                    out = s.run(None, feed)[0]
                    t.append(time.thread_time() - t0)
                    if name == "fused":
                        ref = sessions["plain"].run(None, feed)[0]
                        diff = max(diff, float(np.abs(out - ref).max()))
                us[name].append(round(statistics.median(t) * 1e6))
    print("median CPU us per text, per round:", us)
    print("largest logit difference:", round(diff, 5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

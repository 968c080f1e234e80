"""Does fusing the conv layers' residual Add + LayerNormalization into ONNX Runtime's
SkipLayerNormalization make the conv-form student faster?

    python experiments/skip_layernorm.py --texts ../shared/data/amazon_marc_en/dev.tsv

ORT fuses Add + LayerNormalization only when both Add inputs have the same known or named
dims. After a Conv the sequence dim is unnamed, so only the attention layer's pairs fuse. This
writes the graph's [batch, length, hidden] into the value_info of each conv layer's Add and
LayerNormalization tensors (a conv layer keeps the length), checks that ORT then fuses them, and
times both int8 graphs (random weights, default shape, static int8, 1 thread, CPU time per text
via ``graph_lean.timings``, rounds interleaved).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

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
                    default=graph_lean.ROOT / "edge_sentiment/default_bundle/tokenizer.json")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    rows = [line.rsplit("\t", 1)[0] for line in args.texts.read_text().splitlines()[1:]]
    ids = graph_lean.tokenize(args.tokenizer, rows[: args.n + 256])
    calib, ids = ids[args.n:], ids[: args.n]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fp32 = graph_lean.student(None, tmp / "conv.fp32.onnx", True,
                                  graph_lean.vocab_size(args.tokenizer))
        forms = {"plain": graph_lean.quantize(fp32, tmp / "plain.onnx", calib),
                 "fused": tmp / "fused.onnx"}
        annotate(forms["plain"], forms["fused"])
        for name, path in forms.items():
            kinds = graph_lean.node_types(path, tmp)
            print(name, "SkipLayerNormalization", kinds["SkipLayerNormalization"],
                  "LayerNormalization", kinds["LayerNormalization"], "nodes", sum(kinds.values()))
        times = graph_lean.timings(forms, ids)
        same, diff = graph_lean.agreement(forms["plain"], forms["fused"], ids)
    print("median CPU us per text (median of 5 interleaved rounds):",
          {k: round(v) for k, v in times.items()})
    print(f"fused against plain: same label on {100 * same:.2f}%, largest logit difference "
          f"{diff:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

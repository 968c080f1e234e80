"""The compute floor of a model on this machine: what one text must cost at least.

floor(text of L tokens) = tokenizing + one empty ONNX Runtime call + MACs(L) / int8 MatMul rate

- MACs come from the graph itself: ONNX shape inference at [1, L] gives every MatMul's operand
  shapes (weight MatMuls and the attention products alike) and every Conv's output and weight
  shapes (a convolution of kernel k over C channels is a [C * k, C_out] weight MatMul per
  position), and each ``QAttention``'s products (query/key/value, scores, weighted values);
- the int8 MatMul rate is a bare dynamic-int8 MatMul of the model's most common weight shape,
  at L rows, timed on this machine at the given thread count;
- tokenizing and the empty call are timed here too.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MATMULS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "MatMulIntegerToFloat": (0, 1),
           "QLinearMatMul": (0, 3), "Gemm": (0, 1)}
CONVS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}  # the weight's input index
_WIDTH = {"MatMulIntegerToFloat": 1, "QAttention": 3}  # weight columns per output column


def _median_us(fn: Callable[[], Any], runs: int = 200) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def _shapes(model: Any, length: int) -> dict[str, list[int]]:
    """Every tensor's shape at [1, length]. ONNX's inference stops at com.microsoft nodes
    (``MatMulIntegerToFloat`` and ``QAttention`` of ``onnx_graph = "fused"``), so their outputs
    are filled in from their operands and inference runs again until nothing new is found."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        for dim, value in zip(inp.type.tensor_type.shape.dim, (1, length)):
            dim.ClearField("dim_param")
            dim.dim_value = value
    out = {i.name: list(i.dims) for i in m.graph.initializer}
    while True:
        inferred = onnx.shape_inference.infer_shapes(m)
        for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if dims and all(d > 0 for d in dims):
                out[vi.name] = dims
        found = [(n.output[0], [*out[n.input[0]][:-1], out[n.input[1]][-1] // _WIDTH[n.op_type]])
                 for n in m.graph.node if n.op_type in _WIDTH
                 and n.output[0] not in out and n.input[0] in out and n.input[1] in out]
        if not found:
            return out
        for name, dims in found:
            out[name] = dims
            m.graph.value_info.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims))


def macs(onnx_path: Path, length: int) -> tuple[int, tuple[int, int]]:
    """Multiply-accumulates of one text of ``length`` tokens, and the most common weight shape
    (a Conv weight [C_out, C_in, k] counts as the MatMul weight [C_in * k, C_out])."""
    import onnx

    model = onnx.load(str(onnx_path))
    shapes = _shapes(model, length)
    weights = {i.name for i in model.graph.initializer}
    total, kinds = 0, Counter[tuple[int, int]]()
    for node in model.graph.node:
        if node.op_type in MATMULS:
            a, b = (node.input[i] for i in MATMULS[node.op_type])
            sa, sb = _need(shapes, node, a), _need(shapes, node, b)
            total += int(np.prod(sa)) * sb[-1]  # rows x K x N
            if b in weights:
                kinds[(sb[0], sb[1])] += 1
        elif node.op_type in CONVS:
            w = node.input[CONVS[node.op_type]]
            out, sw = _need(shapes, node, node.output[0]), _need(shapes, node, w)
            per_output = int(np.prod(sw[1:]))  # C_in / group x kernel
            total += int(np.prod(out)) * per_output
            kinds[(per_output, sw[0])] += 1
        elif node.op_type == "QAttention":  # x [B, L, C] x [C, 3H], then two [L, L] x H products
            sx, sw = _need(shapes, node, node.input[0]), _need(shapes, node, node.input[1])
            rows = int(np.prod(sx[:-1]))
            total += rows * sw[0] * sw[1] + 2 * rows * sx[-2] * (sw[1] // 3)
            kinds[(sw[0], sw[1])] += 1
    return total, kinds.most_common(1)[0][0]


def _need(shapes: dict[str, list[int]], node: Any, name: str) -> list[int]:
    if name not in shapes:
        raise ValueError(f"no shape for {node.name} ({node.op_type}) input/output {name}")
    return shapes[name]


def int8_matmul_gmacs(k: int, n: int, rows: int, threads: int) -> float:
    """GMAC/s of a bare dynamic-int8 MatMul [rows, k] x [k, n] in ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])],
                              [w])
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "mm.onnx", Path(tmp) / "mm.int8.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(int8), so, providers=["CPUExecutionProvider"])
    x = rng.standard_normal((rows, k)).astype(np.float32)
    us = _median_us(lambda: sess.run(None, {"x": x}), runs=500)
    return rows * k * n / us / 1e3


def empty_call_us(threads: int) -> float:
    """One ONNX Runtime call of an Identity graph."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [1, None])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [1, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.ones((1, 32), dtype=np.int64)
    return _median_us(lambda: sess.run(None, {"x": x}), runs=1000)


def tokenized(bundle: Any, texts: list[str]) -> tuple[float, list[int]]:
    """Median time to turn one text into token ids with the bundle's tokenizer, and each
    text's token count."""
    from edge_sentiment.tokenize import TextEncoder

    enc = TextEncoder(bundle.root / bundle.manifest.tokenizer.file, bundle.manifest)
    times, lengths = [], []
    for t in texts:
        t0 = time.perf_counter()
        (row,) = enc.rows([t])
        times.append(time.perf_counter() - t0)
        lengths.append(len(row))
    return statistics.median(times) * 1e6, lengths


def floor(bundle_root: Path | None, texts: list[str]) -> tuple[dict[str, Any], list[int]]:
    """The bundle's ONNX student's floor at 1 and 2 threads for a text of the median length of
    ``texts``, and their token counts."""
    from edge_sentiment.bundle import open_bundle

    bundle = open_bundle(bundle_root)
    onnx_file = next(a.file for a in bundle.manifest.artifacts if a.runtime == "onnx")
    tokenize, lengths = tokenized(bundle, texts)
    length = int(statistics.median(lengths))
    total, (k, n) = macs(bundle.root / onnx_file, length)
    out: dict[str, Any] = {"median_tokens": length, "macs_per_token": round(total / length),
                           "macs_median_text": total, "matmul_shape": [k, n],
                           "tokenize_us": round(tokenize, 1)}
    for threads in (1, 2):
        rate = int8_matmul_gmacs(k, n, length, threads)
        call = empty_call_us(threads)
        compute = total / rate / 1e3
        out[f"threads{threads}"] = {
            "int8_matmul_gmacs": round(rate, 1), "empty_call_us": round(call, 1),
            "compute_us": round(compute, 1),
            "floor_us": round(out["tokenize_us"] + call + compute, 1),
            "floor_batched_texts_per_s": round(1e6 / (out["tokenize_us"] + compute))}
    return out, lengths

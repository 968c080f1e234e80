"""``onnx_graph = "fused"``: the static int8 ONNX graph with each weight product giving float.

ONNX Runtime's static int8 (QOperator) graph requantizes every product to uint8 and dequantizes
it again at once (``QLinearMatMul`` -> ``DequantizeLinear`` -> ``Add`` bias), and runs the
dilated ``QLinearConv`` layers about 1.6x slower than one ``QLinearMatMul`` of the same MACs
(2-core Intel Xeon, 28 tokens). This pass rewrites the quantized file (weights, activation
scales and zero points untouched):

- ``QLinearMatMul`` with a constant weight whose uint8 output only feeds a ``DequantizeLinear``
  (and that only an ``Add`` of a constant bias) becomes one ``MatMulIntegerToFloat``
  (com.microsoft: the same integer product, float out, bias added);
- a 1-D ``QLinearConv`` (stride 1, group 1, "same" padding, any dilation) between the
  ``Transpose`` pair of ``ConvLayer.as_conv`` becomes ``QuantizeLinear`` -> ``Pad`` (by the zero
  point) -> one ``Slice`` per tap -> ``Concat`` -> ``MatMulIntegerToFloat`` over the unfolded
  [taps * C_in, C_out] weight: uint8 taps, a quarter of the float slice form's bytes;
- then each self-attention block becomes one ``QAttention`` (``int8_attention.py``).

The products skip one rounding to the output's uint8 grid and the clip to its calibrated range,
so scores move by about that step (0.09 logits at most on marc dev; 99.5% same labels as the
requantized graph, macro-F1 +0.5). Activation scales stay fixed: still batch-independent.
``experiments/int8_float_out.py`` times it side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .int8_attention import fuse_attention

MS = "com.microsoft"
_END = 2**62  # a Slice end past any length


def fuse_file(src: Path, out: Path) -> Path:
    """Rewrite the static int8 ONNX ``src`` into ``out`` (see the module doc)."""
    import onnx

    model = onnx.load(str(src))
    fuse(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def fuse(model: Any) -> None:
    """Rewrite ``model`` (an onnx ModelProto) in place."""
    import onnx

    g = model.graph
    graph = _Graph(g)
    for node in list(g.node):
        if node.op_type == "QLinearMatMul" and node.input[3] in graph.inits:
            graph.matmul(node)
        elif node.op_type == "QLinearConv":
            graph.conv(node)
    nodes = []
    for node in g.node:
        if node.output[0] not in graph.drop:
            nodes.extend(graph.replace.get(node.output[0], [node]))
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(graph.added)
    fuse_attention(g)
    used = {name for node in g.node for name in node.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.value_info[:]  # shapes of removed tensors; ONNX Runtime infers its own
    if not any(o.domain == MS for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(MS, 1))


class _Graph:
    """The graph's lookups and the pending rewrite: nodes keyed by their first output."""

    def __init__(self, g: Any) -> None:
        self.g = g
        self.inits = {i.name: i for i in g.initializer}
        self.replace: dict[str, list[Any]] = {}
        self.drop: set[str] = set()
        self.added: list[Any] = []

    def consumers(self, name: str) -> list[Any]:
        return [n for n in self.g.node if name in n.input]

    def producer(self, name: str) -> Any:
        return next((n for n in self.g.node if name in n.output), None)

    def array(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return np.asarray(numpy_helper.to_array(self.inits[name]))

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.added.append(numpy_helper.from_array(value, name))
        return name

    def only(self, name: str, op: str) -> Any:
        """The single consumer of ``name`` when it is an ``op`` node, else None."""
        users = self.consumers(name)
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def matmul(self, node: Any) -> None:
        dq = self.only(node.output[0], "DequantizeLinear")
        if dq is None:
            return
        out, bias, gone = dq.output[0], "", [dq]
        add = self.only(out, "Add")
        if add is not None:
            other = next(i for i in add.input if i != out)
            if other in self.inits and self.array(other).ndim == 1:
                out, bias, gone = add.output[0], other, [dq, add]
        a, a_scale, a_zero, w, w_scale, w_zero = node.input[:6]
        self.replace[node.output[0]] = [_mm(node.name, a, w, a_scale, w_scale, a_zero, w_zero,
                                            bias, out)]
        self.drop |= {n.output[0] for n in gone}

    def conv(self, node: Any) -> None:
        import onnx

        q = self.producer(node.input[0])
        before = self.producer(q.input[0]) if q is not None else None
        dq = self.only(node.output[0], "DequantizeLinear")
        after = self.only(dq.output[0], "Transpose") if dq is not None else None
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        weight = self.array(node.input[3])
        if (q is None or q.op_type != "QuantizeLinear" or before is None
                or before.op_type != "Transpose" or after is None or weight.ndim != 3
                or attrs.get("group", 1) != 1 or set(attrs.get("strides", [1])) != {1}):
            return
        taps, dilation = weight.shape[2], attrs.get("dilations", [1])[0]
        pad = attrs.get("pads", [0, 0])
        if pad[0] != pad[1] or pad[0] != dilation * (taps - 1) // 2:
            return
        self.replace[q.output[0]] = []
        self.replace[node.output[0]] = self._unfolded(node, before.input[0], after.output[0],
                                                      weight, dilation, pad[0])
        self.drop |= {before.output[0], dq.output[0], after.output[0]}

    def _unfolded(self, node: Any, x: str, out: str, weight: np.ndarray, dilation: int,
                  pad: int) -> list[Any]:
        from onnx import helper

        base = node.name
        _, x_scale, x_zero, w, w_scale, w_zero = node.input[:6]
        c_out, c_in, taps = weight.shape
        unfolded = self.const(f"{w}_unfolded", np.ascontiguousarray(
            weight.transpose(2, 1, 0).reshape(taps * c_in, c_out)))
        bias = ""
        if len(node.input) > 8 and node.input[8]:  # int32 bias at scale x_scale * w_scale
            bias = self.const(f"{node.input[8]}_float", (
                self.array(node.input[8]) * self.array(x_scale) * self.array(w_scale)
            ).astype(np.float32))
        axis = self.const(f"{base}_axis", np.array([1], np.int64))
        nodes = [helper.make_node("QuantizeLinear", [x, x_scale, x_zero], [f"{base}_q"]),
                 helper.make_node("Pad", [f"{base}_q", self.const(
                     f"{base}_pads", np.array([0, pad, 0, 0, pad, 0], np.int64)), x_zero],
                     [f"{base}_padded"])]
        for tap in range(taps):  # tap j reads position t + j * dilation of the padded input
            start, end = tap * dilation, tap * dilation - 2 * pad
            nodes.append(helper.make_node("Slice", [
                f"{base}_padded", self.const(f"{base}_start{tap}", np.array([start], np.int64)),
                self.const(f"{base}_end{tap}", np.array([end if end < 0 else _END], np.int64)),
                axis], [f"{base}_tap{tap}"]))
        nodes.append(helper.make_node("Concat", [f"{base}_tap{t}" for t in range(taps)],
                                      [f"{base}_taps"], axis=2))
        nodes.append(_mm(base, f"{base}_taps", unfolded, x_scale, w_scale, x_zero, w_zero,
                         bias, out))
        return nodes


def _mm(name: str, a: str, w: str, a_scale: str, w_scale: str, a_zero: str, w_zero: str,
        bias: str, out: str) -> Any:
    from onnx import helper

    return helper.make_node("MatMulIntegerToFloat", [a, w, a_scale, w_scale, a_zero, w_zero,
                                                     bias], [out], domain=MS,
                            name=f"{name}_float_out")

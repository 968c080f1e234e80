"""The last step of ``onnx_graph = "fused"``: each self-attention block as one ``QAttention``.

After ``int8_graph.fuse`` an attention block is still about 25 nodes: three products giving
float (query, key, value), three Reshape/Transpose pairs, four QuantizeLinear, the two
``QLinearMatMul`` of the scores and of the weighted values with their DequantizeLinear, the
scaling Div, the mask's Add (and the Unsqueeze/Sub/Mul that make it), Softmax, and a Transpose
and Reshape back. ONNX Runtime's ``QAttention`` (com.microsoft) does all of it in one kernel:
the same uint8 input and int8 weights (the three products' weights side by side, one scale and
zero point per column), then the scores, the mask and the softmax in float. Scores move by a
few hundredths of a logit (the float attention skips four roundings to uint8); the activation
scales stay fixed, so results stay batch-independent. ``experiments/int8_float_out.py`` times it.

The block is found by its shape, not by names: Softmax <- Add(mask) <- Div(sqrt(head size)) <-
DequantizeLinear <- QLinearMatMul(query, key), its output -> QuantizeLinear -> QLinearMatMul
(value) -> DequantizeLinear -> Transpose -> Reshape; each of query, key and value a
``MatMulIntegerToFloat`` of one shared quantized input -> Reshape -> Transpose -> QuantizeLinear,
and the mask made from the graph's ``attention_mask`` input. Anything else is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MS = "com.microsoft"
MASK_INPUT = "attention_mask"
# The Transpose after each product's Reshape to [batch, length, heads, head size]: query and
# value heads-first, key heads-first and transposed for the scores; the output's back.
_PERMS = {"query": [0, 2, 1, 3], "key": [0, 2, 3, 1], "value": [0, 2, 1, 3]}


def fuse_attention(g: Any) -> int:
    """Rewrite each matching attention block of the graph ``g`` in place; how many. The nodes it
    replaces are removed; initializers nothing reads any more are left for the caller."""
    done = 0
    for softmax in [n for n in g.node if n.op_type == "Softmax"]:
        block = _Block.match(g, softmax)
        if block is not None:
            block.rewrite(g, softmax.name or f"attention{done}")
            done += 1
    if done:
        _drop_dead_nodes(g)
    return done


@dataclass(frozen=True)
class _Block:
    products: tuple[Any, Any, Any]  # the query, key and value MatMulIntegerToFloat nodes
    last: Any  # the Reshape whose output the block gives
    scale: float  # of the scores: 1 / sqrt(head size)
    heads: int
    filter_value: float  # a masked position's score

    @classmethod
    def match(cls, g: Any, softmax: Any) -> _Block | None:
        def chain(name: str, ops: tuple[str, ...], up: bool) -> list[Any] | None:
            nodes = []
            for op in ops:
                node = _producer(g, name, op) if up else _consumer(g, name, op)
                if node is None:
                    return None
                nodes.append(node)
                name = node.input[0] if up else node.output[0]
            return nodes

        inits = {i.name: i for i in g.initializer}
        if _attr(softmax, "axis", -1) not in (-1, 3):
            return None
        add = _producer(g, softmax.input[0], "Add")
        div = _producer(g, add.input[0], "Div") if add is not None else None
        if div is None or div.input[1] not in inits:
            return None
        scores = chain(div.input[0], ("DequantizeLinear", "QLinearMatMul"), up=True)
        weighted = chain(softmax.output[0], ("QuantizeLinear", "QLinearMatMul", "DequantizeLinear",
                                             "Transpose", "Reshape"), up=False)
        if scores is None or weighted is None or _attr(weighted[3], "perm") != _PERMS["query"]:
            return None
        paths = {"query": scores[1].input[0], "key": scores[1].input[3],
                 "value": weighted[1].input[3]}
        products = []
        for part, name in paths.items():
            found = chain(name, ("QuantizeLinear", "Transpose", "Reshape",
                                 "MatMulIntegerToFloat"), up=True)
            if (found is None or _attr(found[1], "perm") != _PERMS[part]
                    or len(found[3].input) < 7 or not {*found[3].input[1:7]} <= {*inits}):
                return None
            products.append(found[3])
        if len({tuple(m.input[0:5:2]) for m in products}) != 1:  # one input, scale, zero point
            return None
        filter_value = _mask_filter(g, add.input[1], inits)
        divisor = float(_array(inits[div.input[1]]).reshape(()))
        hidden = _array(inits[products[0].input[1]]).shape[1]
        head = round(divisor**2)  # scores are divided by sqrt(head size)
        if filter_value is None or head < 1 or abs(divisor**2 - head) > 1e-3 * head \
                or hidden % head:
            return None
        return cls((products[0], products[1], products[2]), weighted[-1], 1.0 / divisor,
                   hidden // head, filter_value)

    def rewrite(self, g: Any, base: str) -> None:
        from onnx import TensorProto, helper, numpy_helper

        inits = {i.name: i for i in g.initializer}
        weights = [_array(inits[m.input[1]]) for m in self.products]

        def columns(k: int, dtype: Any) -> np.ndarray:  # input k of each product, per column
            return np.concatenate([np.broadcast_to(_array(inits[m.input[k]]), (w.shape[1],))
                                   for m, w in zip(self.products, weights)]).astype(dtype)

        made = {f"{base}_qkv_weight": np.concatenate(weights, axis=1),
                f"{base}_qkv_bias": columns(6, np.float32),
                f"{base}_qkv_scale": columns(3, np.float32),
                f"{base}_qkv_zero": columns(5, weights[0].dtype)}
        g.initializer.extend(numpy_helper.from_array(v, k) for k, v in made.items())
        x, x_scale, x_zero = (self.products[0].input[k] for k in (0, 2, 4))
        new = [helper.make_node("Cast", [MASK_INPUT], [f"{base}_mask"], to=TensorProto.INT32),
               helper.make_node("QAttention", [
                   x, f"{base}_qkv_weight", f"{base}_qkv_bias", x_scale, f"{base}_qkv_scale",
                   f"{base}_mask", x_zero, f"{base}_qkv_zero"], [self.last.output[0]],
                   domain=MS, name=f"{base}_qattention", num_heads=self.heads,
                   scale=self.scale, mask_filter_value=self.filter_value)]
        at = list(g.node).index(self.last)
        g.node.remove(self.last)
        for k, node in enumerate(new):
            g.node.insert(at + k, node)


def _producer(g: Any, name: str, op: str | None = None) -> Any:
    """The node giving ``name`` (when it is an ``op`` node, if ``op`` is given), else None."""
    node = next((n for n in g.node if name in n.output), None)
    return node if node is not None and op in (None, node.op_type) else None


def _consumer(g: Any, name: str, op: str) -> Any:
    """The single reader of ``name`` when it is an ``op`` node, else None."""
    users = [n for n in g.node if name in n.input]
    return users[0] if len(users) == 1 and users[0].op_type == op else None


def _mask_filter(g: Any, name: str, inits: dict[str, Any]) -> float | None:
    """The value a masked position's score gets, when ``name`` is ``(1 - mask) * value`` of the
    graph's ``attention_mask`` (through Cast/Unsqueeze); else None."""
    node = _producer(g, name, "Mul")
    if node is None:
        return None
    value = next((i for i in node.input if i in inits), None)
    other = next((i for i in node.input if i not in inits), None)
    if value is None or other is None or _array(inits[value]).size != 1:
        return None
    seen, todo = set(), [other]
    while todo:  # everything it is made of must come from attention_mask and constants
        cur = todo.pop()
        if cur in seen or cur in inits:
            continue
        seen.add(cur)
        if cur == MASK_INPUT:
            continue
        src = _producer(g, cur)
        if src is None or src.op_type not in ("Cast", "Unsqueeze", "Sub", "Transpose",
                                              "Constant"):
            return None
        todo.extend(i for i in src.input if i)
    return float(_array(inits[value]).reshape(()))


def _drop_dead_nodes(g: Any) -> None:
    """Remove nodes whose outputs nothing reads, until none is left."""
    outputs = {o.name for o in g.output}
    while True:
        read = {i for n in g.node for i in n.input} | outputs
        dead = [n for n in g.node if not any(o in read for o in n.output)]
        if not dead:
            return
        for node in dead:
            g.node.remove(node)


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    found = [helper.get_attribute_value(a) for a in node.attribute if a.name == name]
    value = found[0] if found else default
    return [int(v) for v in value] if name == "perm" and value is not None else value


def _array(init: Any) -> np.ndarray:
    from onnx import numpy_helper

    return np.asarray(numpy_helper.to_array(init))

"""bench/floor.py counts a graph's multiply-accumulates from its MatMul shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

import floor  # noqa: E402


def test_macs_counts_weight_and_activation_matmuls(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((8, 4), dtype=np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),  # [1, L, 8] x [8, 4]
             helper.make_node("Transpose", ["h"], ["ht"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["h", "ht"], ["y"])]  # [1, L, 4] x [1, 4, L]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "L", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "L", "L"])], [w])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    total, shape = floor.macs(path, 10)
    assert total == 10 * 8 * 4 + 10 * 4 * 10
    assert shape == (8, 4)


def test_macs_counts_convolutions_as_weight_matmuls(tmp_path: Path) -> None:
    """The conv-form student (``onnx_graph = "conv"``) has Conv nodes where the slice form had
    MatMuls: each output position costs C_in x kernel MACs per output channel."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 8, 3), dtype=np.float32), "w")
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),  # [1, 8, L]
             helper.make_node("Conv", ["xt", "w"], ["y"], pads=[1, 1])]  # [1, 4, L]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "L", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "L"])], [w])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    total, shape = floor.macs(path, 10)
    assert total == 10 * 4 * 8 * 3
    assert shape == (24, 4)


def test_macs_counts_a_qattention_as_its_products(tmp_path: Path) -> None:
    """``onnx_graph = "fused"`` runs an attention block as one QAttention: query, key and value
    ([L, 8] x [8, 3 x 4]), the scores and the weighted values (2 x [L, L] x 4), the same MACs as
    the nodes it replaces."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.ones((8, 12), dtype=np.int8), "w"),
             numpy_helper.from_array(np.zeros(12, dtype=np.float32), "b"),
             numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s"),
             numpy_helper.from_array(np.array(128, dtype=np.uint8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("QAttention", ["xq", "w", "b", "s", "s"], ["h"],
                              domain="com.microsoft", num_heads=2),
             helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "L", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "L", 4])], inits)
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.microsoft", 1)]),
              path)
    total, shape = floor.macs(path, 10)
    assert total == 10 * 8 * 12 + 2 * 10 * 10 * 4
    assert shape == (8, 12)

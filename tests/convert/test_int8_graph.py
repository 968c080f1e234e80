"""``onnx_graph = "fused"`` (``int8_graph.py``): the static int8 conv-form graph with every weight
product giving float. It computes the requantized graph's function without that rounding, so it
is at least as close to the fp32 model, keeps a text's scores independent of its batch, and runs
no QLinearConv and no DequantizeLinear after a weight product; a self-attention block runs as one
QAttention (``int8_attention.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edge_sentiment.evaluate import read_labeled_tsv  # noqa: E402
from edge_sentiment_convert.export import (  # noqa: E402
    calibration_feeds,
    export_onnx,
    quantize_onnx_static,
)
from edge_sentiment_convert.int8_graph import fuse_file  # noqa: E402
from tests.convert.test_conv_graph import student  # noqa: E402
from tests.convert.test_quant_static import FIX, TOKENIZER, alone_and_batched, dev_feeds  # noqa: E402


@pytest.fixture(scope="module", params=[0, 1], ids=["cnn", "cnn+attention"])
def forms(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, Path]:
    """fp32, static int8 and fused int8 ONNX of one student (three dilated conv layers)."""
    tmp = tmp_path_factory.mktemp("fused")
    fp32 = export_onnx(student(request.param), tmp / "conv.onnx", opset=20, conv=True)
    calib = calibration_feeds(TOKENIZER, read_labeled_tsv(FIX / "data/reviews/train.tsv")[0], 32)
    int8 = quantize_onnx_static(fp32, tmp / "conv.int8.onnx", calib)
    return {"fp32": fp32, "int8": int8, "fused": fuse_file(int8, tmp / "fused.int8.onnx")}


def test_fused_graph_is_the_int8_function_without_the_output_rounding(
        forms: dict[str, Path]) -> None:
    _, fp32 = alone_and_batched(forms["fp32"], dev_feeds())
    _, int8 = alone_and_batched(forms["int8"], dev_feeds())
    _, fused = alone_and_batched(forms["fused"], dev_feeds())
    assert (fused.argmax(1) == int8.argmax(1)).mean() >= 0.95
    assert np.abs(fused - fp32).mean() <= np.abs(int8 - fp32).mean()
    assert np.abs(fused - int8).max() < 0.1 * np.abs(int8).max()


def test_fused_graph_stays_batch_independent(forms: dict[str, Path]) -> None:
    alone, batched = alone_and_batched(forms["fused"], dev_feeds())
    assert np.abs(alone - batched).max() < 1e-5


def test_no_conv_and_no_requantized_weight_product_is_left(forms: dict[str, Path]) -> None:
    graph = onnx.load(str(forms["fused"])).graph
    weights = {i.name for i in graph.initializer}
    ops = [n.op_type for n in graph.node]
    assert "QLinearConv" not in ops
    assert not [n.name for n in graph.node if n.op_type == "QLinearMatMul"
                and n.input[3] in weights], "a weight product still requantizes"
    old = onnx.load(str(forms["int8"])).graph
    old_weights = {i.name for i in old.initializer}
    before = [n for n in old.node
              if n.op_type in ("QLinearConv", "QLinearMatMul") and n.input[3] in old_weights]
    old_ops = [n.op_type for n in old.node]
    blocks = old_ops.count("Softmax")  # each attention block: one QAttention, its 3 products
    assert ops.count("QAttention") == blocks and "Softmax" not in ops
    assert ops.count("MatMulIntegerToFloat") == len(before) - 3 * blocks
    assert ops.count("Slice") == 3 * 3  # three taps for each of the three layers
    assert "Transpose" not in ops  # channels-first and heads-first layouts gone


def test_an_attention_block_of_another_layout_is_left_as_nodes(forms: dict[str, Path],
                                                               tmp_path: Path) -> None:
    """The QAttention step matches the block by its shape; a key that is not transposed for the
    scores (here: its Transpose made heads-first like the query's) is not that block."""
    model = onnx.load(str(forms["int8"]))
    keys = [n for n in model.graph.node if n.op_type == "Transpose"
            and list(n.attribute[0].ints) == [0, 2, 3, 1]]
    for node in keys:
        node.attribute[0].ints[:] = [0, 2, 1, 3]
    onnx.save(model, tmp_path / "other.int8.onnx")
    ops = [n.op_type for n in onnx.load(str(fuse_file(tmp_path / "other.int8.onnx",
                                                      tmp_path / "other.fused.onnx"))).graph.node]
    assert "QAttention" not in ops and ops.count("Softmax") == len(keys)

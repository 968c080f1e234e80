"""The CNN student's ONNX graph as one Conv node per layer (``onnx_graph = "conv"``): the same
function as the trained Pad/Slices/Concat/MatMul form, in fewer nodes once ONNX Runtime has
optimized it, and still batch-independent after static int8."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edge_sentiment.evaluate import read_labeled_tsv  # noqa: E402
from edge_sentiment_convert.cnn import ConvConfig, ConvStudent  # noqa: E402
from edge_sentiment_convert.export import (  # noqa: E402
    calibration_feeds,
    export_onnx,
    quantize_onnx_static,
)
from tests.convert.test_quant_static import (  # noqa: E402
    FIX,
    TOKENIZER,
    alone_and_batched,
    dev_feeds,
)


def student(attention: int) -> ConvStudent:
    torch.manual_seed(0)
    vocab = len(json.loads(TOKENIZER.read_text())["model"]["vocab"])
    return ConvStudent(ConvConfig(vocab_size=vocab, hidden=32, layers=3, emb_rank=8,
                                  max_len=32, attention=attention, heads=2,
                                  intermediate=48)).eval()


def session(path: Path, optimized: Path | None = None) -> Any:
    so = ort.SessionOptions()
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", params=[0, 1], ids=["cnn", "cnn+attention"])
def forms(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, Path]:
    """fp32 and static int8 ONNX of one student in both graph forms."""
    tmp = tmp_path_factory.mktemp("conv")
    model = student(request.param)
    out = {"slices": export_onnx(model, tmp / "slices.onnx"),
           "conv": export_onnx(model, tmp / "conv.onnx", opset=20, conv=True)}
    calib = calibration_feeds(TOKENIZER, read_labeled_tsv(FIX / "data/reviews/train.tsv")[0], 32)
    for name in ("slices", "conv"):
        out[f"{name} int8"] = quantize_onnx_static(out[name], tmp / f"{name}.int8.onnx", calib)
    return out


def test_conv_form_computes_the_trained_function(forms: dict[str, Path]) -> None:
    _, want = alone_and_batched(forms["slices"], dev_feeds())
    _, got = alone_and_batched(forms["conv"], dev_feeds())
    assert np.abs(got - want).max() < 1e-4


def test_conv_form_has_no_taps_and_fewer_nodes_to_run(forms: dict[str, Path],
                                                      tmp_path: Path) -> None:
    ops = [n.op_type for n in onnx.load(str(forms["conv"])).graph.node]
    assert ops.count("Conv") == 3 and "Slice" not in ops and "Pad" not in ops
    runs = {}
    for name in ("slices int8", "conv int8"):
        opt = tmp_path / "opt.onnx"
        session(forms[name], optimized=opt)
        runs[name] = [n.op_type for n in onnx.load(str(opt)).graph.node]
    assert runs["conv int8"].count("QLinearConv") == 3
    assert "Erf" not in runs["conv int8"]  # the exact GELU is one fused node
    # Pad, 3 Slices and Concat a layer
    assert len(runs["conv int8"]) <= len(runs["slices int8"]) - 3 * 5, runs


def test_static_int8_conv_form_is_batch_independent_and_agrees(forms: dict[str, Path]) -> None:
    alone, batched = alone_and_batched(forms["conv int8"], dev_feeds())
    assert np.abs(alone - batched).max() < 1e-5
    _, slices = alone_and_batched(forms["slices int8"], dev_feeds())
    assert (slices.argmax(1) == batched.argmax(1)).mean() >= 0.95

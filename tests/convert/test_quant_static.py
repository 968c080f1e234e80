"""Static int8 for the ONNX student (``onnx_quant = "static"``): activation scales fitted once on
calibration texts, so a text's logits are the same alone and in any batch. Dynamic int8 (one
activation scale per call) is the counter-example: its logits move with the batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edge_sentiment.evaluate import read_labeled_tsv  # noqa: E402
from edge_sentiment_convert.export import (  # noqa: E402
    calibration_feeds,
    quantize_onnx,
    quantize_onnx_static,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures"
FP32 = FIX / "tiny_bundle" / "model.fp32.onnx"
TOKENIZER = FIX / "tiny_bundle" / "tokenizer.json"


def alone_and_batched(model: Path, feeds: list[dict[str, np.ndarray]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    alone = np.concatenate([sess.run(None, f)[0] for f in feeds])
    width = max(f["input_ids"].shape[1] for f in feeds)
    ids = np.zeros((len(feeds), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, f in enumerate(feeds):
        n = f["input_ids"].shape[1]
        ids[i, :n], mask[i, :n] = f["input_ids"][0], 1
    batched: np.ndarray = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    return alone, batched


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("quant")
    train, _ = read_labeled_tsv(FIX / "data/reviews/train.tsv")
    feeds = calibration_feeds(TOKENIZER, train, 32)
    return {"static": quantize_onnx_static(FP32, tmp / "static.onnx", feeds),
            "dynamic": quantize_onnx(FP32, tmp / "dynamic.onnx", per_channel=False)}


def dev_feeds() -> list[dict[str, np.ndarray]]:
    texts, _ = read_labeled_tsv(FIX / "data/reviews/dev.tsv")
    return calibration_feeds(TOKENIZER, texts, 32)


def test_static_int8_scores_do_not_depend_on_the_batch(models: dict[str, Path]) -> None:
    graph = onnx.load(str(models["static"])).graph
    ops = {n.op_type for n in graph.node}
    assert "QLinearMatMul" in ops and "DynamicQuantizeLinear" not in ops
    alone, batched = alone_and_batched(models["static"], dev_feeds())
    assert np.abs(alone - batched).max() < 1e-5


def test_dynamic_int8_scores_move_with_the_batch(models: dict[str, Path]) -> None:
    alone, batched = alone_and_batched(models["dynamic"], dev_feeds())
    assert np.abs(alone - batched).max() > 1e-4


def test_static_int8_stays_close_to_fp32(models: dict[str, Path]) -> None:
    feeds = dev_feeds()
    ref, _ = alone_and_batched(FP32, feeds)
    got, _ = alone_and_batched(models["static"], feeds)
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.9
    assert models["static"].stat().st_size < FP32.stat().st_size

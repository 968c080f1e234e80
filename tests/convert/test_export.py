"""The teacher's int8 reference through Optimum: per-channel dynamic int8 that ONNX Runtime runs
close to the fp32 model it came from."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optimum.onnxruntime")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edge_sentiment_convert.export import quantize_teacher  # noqa: E402

FP32 = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_bundle" / "model.fp32.onnx"


def run(model: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out: np.ndarray = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    return out


def test_quantize_teacher_writes_per_channel_int8_close_to_fp32(tmp_path: Path) -> None:
    fp32 = tmp_path / "teacher.fp32.onnx"
    shutil.copy(FP32, fp32)
    int8 = quantize_teacher(fp32, tmp_path / "teacher.int8.onnx")

    graph = onnx.load(str(int8)).graph
    ops = {node.op_type for node in graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    scales = [init for init in graph.initializer if init.name.endswith("_scale")]
    assert any(np.prod(init.dims) > 1 for init in scales), "expected per-channel weight scales"
    assert int8.stat().st_size < fp32.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher.fp32.onnx", "teacher.int8.onnx"]

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, size=(4, 12)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    ref, got = run(fp32, ids, mask), run(int8, ids, mask)
    assert got.shape == ref.shape
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() > 0.9, cos

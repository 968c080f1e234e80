from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_sentiment.backends import BackendOptions, probe, tflite
from edge_sentiment.errors import RuntimeUnavailableError


def test_probe_finds_installed_runtimes() -> None:
    available = probe()
    assert "onnx" in available.runtimes and "CPUExecutionProvider" in available.providers["onnx"]
    assert "tflite" in available.runtimes


def test_missing_tflite_runtime_names_the_extra(tiny_bundle: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tflite, "_MODULES", ("no_such_module.interpreter",))
    with pytest.raises(RuntimeUnavailableError, match=r"edge-sentiment\[tflite\]"):
        tflite.create(tiny_bundle / "model.fp32.tflite", BackendOptions("xnnpack", 1))
    assert tflite.available_providers() == []


@pytest.mark.parametrize("provider", ["xnnpack", "cpu"])
def test_tflite_providers_agree(tiny_bundle: Path, provider: str) -> None:
    import numpy as np

    backend = tflite.create(tiny_bundle / "model.fp32.tflite", BackendOptions(provider, 1))
    ids = np.zeros((2, 32), dtype=np.int64)
    ids[:, 0], ids[:, 1], ids[:, 2] = 2, 100, 3
    mask = (ids != 0).astype(np.int64)
    out = backend.run(ids, mask)
    assert out.shape == (2, 3) and np.allclose(out[0], out[1]) and np.abs(out).sum() > 0


def test_onnx_backend_runs_add_and_layernorm_unfused(tmp_path: Path) -> None:
    """ONNX Runtime's own session fuses Add + LayerNormalization into SkipLayerNormalization,
    whose CPU kernel ran about 5x slower; the backend's session leaves the pair as it is.
    Skipped, and said so, where only the runtime is installed (the aarch64 subset): writing and
    reading the graphs needs the onnx package."""
    import numpy as np
    import onnxruntime as ort

    onnx = pytest.importorskip("onnx", reason="onnx writes and reads the test graphs")
    from onnx import TensorProto, helper, numpy_helper

    from edge_sentiment.backends.onnx import open_session

    def tensor(name: str) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "length", 8])

    norm = [numpy_helper.from_array(np.ones(8, np.float32), "gamma"),
            numpy_helper.from_array(np.zeros(8, np.float32), "beta")]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "skip"], ["sum"]),
         helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1)],
        "g", [tensor("x"), tensor("skip")], [tensor("y")], norm)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "addnorm.onnx"
    onnx.save(model, path)

    def ran(optimized: Path) -> list[str]:
        return [n.op_type for n in onnx.load(str(optimized)).graph.node]

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "plain.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    assert ran(tmp_path / "plain.onnx") == ["SkipLayerNormalization"]
    open_session(path, "CPUExecutionProvider", 1, optimized=tmp_path / "ours.onnx")
    assert ran(tmp_path / "ours.onnx") == ["Add", "LayerNormalization"]

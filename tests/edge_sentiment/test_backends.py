from __future__ import annotations

from pathlib import Path

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

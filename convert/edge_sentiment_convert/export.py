"""Export a student to ONNX (fp32 and dynamic int8) and TFLite (int8); quantize the teacher.

Pitfalls handled here (measured on this project's build machines):
- ``quant_pre_process`` needs ``skip_symbolic_shape=True`` for BERT-style graphs;
- litert-torch wants fixed shapes and int32 inputs;
- ai-edge-quantizer's per-channel dynamic int8 outputs zeros on tflite-runtime
  2.14, so TFLite int8 uses TENSORWISE granularity.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_sentiment.errors import BackendError, missing_extra

from .cnn import ConvLayer

log = logging.getLogger(__name__)


class _Int32Inputs(nn.Module):
    """TFLite wants int32 ids and mask."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(input_ids, attention_mask)
        return out


def export_onnx(model: nn.Module, out: Path, opset: int = 17, conv: bool = False) -> Path:
    """fp32 ONNX with dynamic batch and length, inputs ``input_ids``, ``attention_mask``.
    ``conv``: a CNN student's convolutions as one ``Conv`` node each (same weights)."""
    model.eval()
    layers = [m for m in model.modules() if isinstance(m, ConvLayer)]
    for m in layers:
        m.as_conv = conv
    try:
        return _export(model, out, opset)
    finally:
        for m in layers:
            m.as_conv = False


def _export(model: nn.Module, out: Path, opset: int) -> Path:
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
            output_names=["logits"], opset_version=opset, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                          "attention_mask": {0: "batch", 1: "length"},
                          "logits": {0: "batch"}})
    return out


def quantize_onnx(fp32: Path, out: Path, per_channel: bool = True) -> Path:
    """Dynamic int8 (weights int8, activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        quantize_dynamic(str(prep), str(out), weight_type=QuantType.QInt8,
                         per_channel=per_channel,
                         op_types_to_quantize=["MatMul", "Gemm", "Gather"],
                         extra_options={"EnableSubgraph": False, "DefaultTensorType": 1})
    return out


def quantize_onnx_static(fp32: Path, out: Path, feeds: list[dict[str, np.ndarray]],
                         per_channel: bool = False) -> Path:
    """Static int8: every MatMul's activations quantized with one scale fitted once, on
    ``feeds`` (calibration texts, one per feed), so a text's scores do not depend on the other
    texts in its call, unlike ``quantize_onnx`` (one activation scale per call). The scales are
    each tensor's min and max over the feeds: ORT's histogram calibrators need feeds of one
    shape, and padding every text to one length would count pad positions."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.rows, None)

    with tempfile.TemporaryDirectory() as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        quantize_static(str(prep), str(out), Reader(), quant_format=QuantFormat.QOperator,
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Conv", "Gather"],
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"DefaultTensorType": 1})
    return out


def calibration_feeds(tokenizer: Path, texts: list[str], max_len: int
                      ) -> list[dict[str, np.ndarray]]:
    """One ONNX feed per text (its real length) for ``quantize_onnx_static``."""
    from .teacher import load_tokenizer

    tok = load_tokenizer(tokenizer, max_len)
    feeds = []
    for enc in tok.encode_batch(texts):
        ids = np.array([enc.ids], dtype=np.int64)
        feeds.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    return feeds


def quantize_teacher(fp32: Path, out: Path) -> Path:
    """The teacher's int8 reference: Optimum's out-of-the-box dynamic int8 for x86 with VNNI
    (per-channel int8 weights, uint8 activations; ``AutoQuantizationConfig.avx512_vnni``).

    The fp32 export stays ``export_onnx``: the teacher is BERT with a mean-pooling head, not one
    of the task heads Optimum's exporter knows. The students keep ``quantize_onnx``: per-tensor
    weights, to match TFLite's TENSORWISE scheme.
    """
    try:
        from optimum.onnxruntime import ORTQuantizer
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except ImportError as exc:
        raise missing_extra("optimum (the teacher's int8 reference)", "convert") from exc

    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Optimum warns that the folder has no transformers config.json; nothing here needs one.
        quantizer = ORTQuantizer.from_pretrained(fp32.parent, file_name=fp32.name)
        made = Path(tmp) / "quantized"
        quantizer.quantize(quantization_config=config, save_dir=made)
        onnx_files = sorted(made.glob("*.onnx"))
        if len(onnx_files) != 1:
            raise BackendError(f"Optimum wrote {len(onnx_files)} ONNX files, expected one")
        shutil.move(onnx_files[0], out)
    return out


def export_tflite(model: nn.Module, out: Path, length: int, lengths: tuple[int, ...] = ()
                  ) -> Path:
    """fp32 TFLite with a fixed [1, length] int32 input; with ``lengths``, one signature per
    length instead (``len16``, ``len32``, ...), sharing one copy of the weights."""
    import litert_torch

    model.eval()
    wrapped = _Int32Inputs(model).eval()

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ones((1, n), dtype=torch.int32), torch.ones((1, n), dtype=torch.int32)

    if not lengths:
        litert_torch.convert(wrapped, sample(length)).export(str(out))
        return out
    converter = litert_torch.signature(f"len{lengths[0]}", wrapped, sample(lengths[0]))
    for n in lengths[1:]:
        converter = converter.signature(f"len{n}", wrapped, sample(n))
    converter.convert().export(str(out))
    return out


def quantize_tflite(fp32: Path, out: Path, mode: str = "dynamic_tensorwise") -> Path:
    """int8 TFLite via ai-edge-quantizer: ``dynamic_tensorwise`` or ``weight_only``."""
    from ai_edge_quantizer import qtyping, quantizer

    qt = quantizer.Quantizer(str(fp32))
    op = qtyping.TFLOperationName.ALL_SUPPORTED
    tensorwise = qtyping.QuantGranularity.TENSORWISE
    if mode == "dynamic_tensorwise":
        qt.add_dynamic_config(".*", op, 8, tensorwise)
    elif mode == "weight_only":
        qt.add_weight_only_config(".*", op, 8, tensorwise)
    else:
        raise ValueError(f"unknown TFLite quantization mode {mode!r}")
    result = qt.quantize()
    if out.exists():
        os.remove(out)
    result.export_model(str(out))
    return out

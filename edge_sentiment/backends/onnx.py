"""ONNX Runtime backend."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, missing_extra
from .base import BackendOptions

log = logging.getLogger(__name__)

NAME = "onnx"
EXTRA = "onnx"
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)  # when a profile names none


def runtime_version() -> str | None:
    """The installed onnxruntime version, or None."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return str(ort.__version__)


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


class OnnxBackend:
    name = NAME

    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise missing_extra("onnxruntime", EXTRA) from exc
        # On CPU, ``threads`` one-thread runs side by side (the classifier's chunks): for this
        # small model ONNX Runtime's intra-op threads gain nothing on one text and lose on batches
        # (see docs/benchmarks.md). Other providers: one run at a time, ``threads`` inside it.
        self.workers = options.threads if options.provider == "CPUExecutionProvider" else 1
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1 if self.workers > 1 else options.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        provider_options: list[dict[str, Any]] = [{}]
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=so, providers=[options.provider],
                provider_options=provider_options)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"onnxruntime cannot load {model_path.name}: {exc}") from exc
        self.provider = options.provider
        self.fixed_length = options.fixed_length
        self._inputs = [i.name for i in self._session.get_inputs()]
        if self._inputs[:2] != ["input_ids", "attention_mask"]:
            raise BackendError(f"{model_path.name}: inputs {self._inputs} are not "
                               "['input_ids', 'attention_mask']")
        self._dtype = np.int32 if "int32" in self._session.get_inputs()[0].type else np.int64

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids.astype(self._dtype, copy=False),
                 "attention_mask": attention_mask.astype(self._dtype, copy=False)}
        try:
            (logits,) = self._session.run(None, feeds)[:1]
        except Exception as exc:
            raise BackendError(f"onnxruntime run failed: {exc}") from exc
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        del self._session


def create(model_path: Path, options: BackendOptions) -> OnnxBackend:
    return OnnxBackend(model_path, options)

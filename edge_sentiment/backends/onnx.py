"""ONNX Runtime backend."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, missing_extra
from .base import BackendOptions

log = logging.getLogger(__name__)

NAME = "onnx"
EXTRA = "onnx"
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)  # when a profile names none
# ONNX Runtime graph rewrites left out: its fp32 SkipLayerNormalization CPU kernel (1.32) took
# 51 us where the Add and LayerNormalization it replaces take 11 (28 tokens x 384, 1 thread), so
# the fusion cost the student about 8% of a text's time. The same numbers either way.
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


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
        self._path = model_path
        self.provider = options.provider
        self.fixed_length = options.fixed_length
        # On CPU a call's chunks run side by side, each on one thread, in a second session made
        # on first use (about 8 MB): for a model this small, ONNX Runtime's intra-op threads add
        # little to one run, while two one-thread runs at once raised a 256-text call's rate by
        # about a quarter on a quiet 2-core host. One text still runs on the ``threads``-thread
        # session.
        cpu = options.provider == "CPUExecutionProvider"
        self.workers = options.threads if cpu else 1
        self._session = self._open(options.threads)
        self._side: Any = None
        self._side_lock = threading.Lock()
        self._inputs = [i.name for i in self._session.get_inputs()]
        if self._inputs[:2] != ["input_ids", "attention_mask"]:
            raise BackendError(f"{model_path.name}: inputs {self._inputs} are not "
                               "['input_ids', 'attention_mask']")
        self._dtype = np.int32 if "int32" in self._session.get_inputs()[0].type else np.int64

    def _open(self, threads: int) -> Any:
        return open_session(self._path, self.provider, threads)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self._run(self._session, input_ids, attention_mask)

    def run_side_by_side(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self.workers < 2:
            return self.run(input_ids, attention_mask)
        with self._side_lock:
            if self._side is None:
                self._side = self._open(1)
        return self._run(self._side, input_ids, attention_mask)

    def _run(self, session: Any, input_ids: np.ndarray, attention_mask: np.ndarray
             ) -> np.ndarray:
        feeds = {"input_ids": input_ids.astype(self._dtype, copy=False),
                 "attention_mask": attention_mask.astype(self._dtype, copy=False)}
        try:
            (logits,) = session.run(None, feeds)[:1]
        except Exception as exc:
            raise BackendError(f"onnxruntime run failed: {exc}") from exc
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        del self._session
        self._side = None


def open_session(path: Path, provider: str, threads: int, optimized: Path | None = None) -> Any:
    """An InferenceSession as the backend runs it; ``optimized``: where ONNX Runtime writes the
    graph it runs (for tests and experiments)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise missing_extra("onnxruntime", EXTRA) from exc
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=[provider],
                                    provider_options=[{}],
                                    disabled_optimizers=list(DISABLED_OPTIMIZERS))
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise BackendError(f"onnxruntime cannot load {path.name}: {exc}") from exc


def create(model_path: Path, options: BackendOptions) -> OnnxBackend:
    return OnnxBackend(model_path, options)

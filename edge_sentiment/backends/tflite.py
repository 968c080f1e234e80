"""TFLite backend: ``ai_edge_litert`` first, else ``tflite_runtime``.

TFLite interpreters are not thread safe, so calls are serialised with a lock.
Models have fixed input shapes ([1, L]); each text runs alone, padded to L. A model with one
signature per length (``len16``, ``len32``, ...; the manifest's ``lengths``) runs each text in
the shortest signature that holds it, so a 20-token review is not padded to 128.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import BackendError, missing_extra
from .base import BackendOptions

log = logging.getLogger(__name__)

NAME = "tflite"
EXTRA = "tflite"
DEFAULT_PROVIDERS = ("xnnpack", "cpu")  # when a profile names none
_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def _interpreter_module() -> ModuleType | None:
    for name in _MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def runtime_version() -> str | None:
    """``ai_edge_litert x.y`` or ``tflite_runtime x.y``, or None."""
    for dist in ("ai_edge_litert", "tflite_runtime"):
        try:
            module = importlib.import_module(dist)
        except ImportError:
            continue
        return f"{dist} {getattr(module, '__version__', '?')}"
    return None


def available_providers() -> list[str]:
    return ["xnnpack", "cpu"] if _interpreter_module() is not None else []


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Keep the runtime's native INFO lines ("Created TensorFlow Lite XNNPACK delegate") off
    stderr, unless edge_sentiment logs at DEBUG (``--debug``). The C++ code writes to file
    descriptor 2 directly, so the descriptor itself is pointed at /dev/null for the call."""
    if logging.getLogger("edge_sentiment").isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def shortest_fit(lengths: list[int], tokens: int) -> int:
    """Index in ``lengths`` (ascending) of the shortest that holds ``tokens``; the longest when
    none does (the text was truncated to it already)."""
    return next((i for i, n in enumerate(lengths) if n >= tokens), len(lengths) - 1)


class TfliteBackend:
    name = NAME

    def __init__(self, model_path: Path, options: BackendOptions) -> None:
        module = _interpreter_module()
        if module is None:
            raise missing_extra("ai-edge-litert (or tflite-runtime)", EXTRA)
        kwargs: dict[str, Any] = {"model_path": str(model_path), "num_threads": options.threads}
        if options.provider == "cpu":
            # XNNPACK is the default delegate; the plain reference kernels are opt-in.
            resolver = getattr(module, "OpResolverType", None)
            if resolver is not None:
                kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with quiet_native_stderr():
                self._interp = module.Interpreter(**kwargs)
                self._interp.allocate_tensors()
        except Exception as exc:
            raise BackendError(f"TFLite cannot load {model_path.name}: {exc}") from exc
        self._runners = self._signature_runners(model_path, options.lengths)
        if self._runners:
            self.fixed_length: int | None = None  # each text is padded to its signature here
        else:
            details = sorted(self._interp.get_input_details(), key=lambda d: d["index"])
            self._inputs = self._order_inputs(details)
            self._output = self._interp.get_output_details()[0]["index"]
            self.fixed_length = int(details[0]["shape"][1])
        self.provider = options.provider
        self.workers = 1  # an Interpreter runs one call at a time (``run`` holds a lock)
        self._lock = threading.Lock()

    def _signature_runners(self, model_path: Path, lengths: tuple[int, ...]
                           ) -> list[tuple[int, Any, list[dict[str, Any]]]]:
        """(length, runner, [ids input, mask input] details) per manifest length,
        shortest first; [] for a model run through its only subgraph. A file with several
        signatures needs lengths."""
        names = list(self._interp.get_signature_list())
        if not lengths:
            if len(names) > 1:
                raise BackendError(f"TFLite model {model_path.name} has signatures {names} but "
                                   "the manifest lists no lengths for them")
            return []
        missing = [f"len{n}" for n in lengths if f"len{n}" not in names]
        if missing:
            raise BackendError(f"TFLite model {model_path.name} lacks the signatures {missing} "
                               f"its manifest lists (it has {names})")
        runners = []
        for n in lengths:
            runner = self._interp.get_signature_runner(f"len{n}")
            details = runner.get_input_details()  # name -> details; args_0 (ids), args_1 (mask)
            inputs = self._order_inputs([{**d, "name": k} for k, d in sorted(details.items())])
            runners.append((n, runner, inputs))
        return runners

    @staticmethod
    def _order_inputs(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Find ids then mask; by name when the converter kept names, else by index."""
        if len(details) != 2:
            raise BackendError(f"TFLite model has {len(details)} inputs; expected 2")
        by_mask = sorted(details, key=lambda d: "mask" in str(d["name"]))
        return by_mask if any("mask" in str(d["name"]) for d in details) else details

    @staticmethod
    def _padded(ids: np.ndarray, mask: np.ndarray, width: int, inputs: list[dict[str, Any]]
                ) -> tuple[np.ndarray, np.ndarray]:
        """One text's ids and mask as [1, width] arrays of the model's input dtypes."""
        pad_ids = np.zeros((1, width), dtype=inputs[0]["dtype"])
        pad_mask = np.zeros((1, width), dtype=inputs[1]["dtype"])
        n = min(width, ids.shape[0])
        pad_ids[0, :n], pad_mask[0, :n] = ids[:n], mask[:n]
        return pad_ids, pad_mask

    def _run_signature(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        pick = shortest_fit([r[0] for r in self._runners], int(mask.sum()))
        width, runner, inputs = self._runners[pick]
        pad_ids, pad_mask = self._padded(ids, mask, width, inputs)
        out = runner(**{inputs[0]["name"]: pad_ids, inputs[1]["name"]: pad_mask})
        return np.array(next(iter(out.values())), dtype=np.float32).reshape(-1)

    def _run_one(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._runners:
            return self._run_signature(ids, mask)
        width = self.fixed_length or ids.shape[1]
        pad_ids, pad_mask = self._padded(ids, mask, width, self._inputs)
        self._interp.set_tensor(self._inputs[0]["index"], pad_ids)
        self._interp.set_tensor(self._inputs[1]["index"], pad_mask)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._output), dtype=np.float32).reshape(-1)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        try:
            with self._lock:
                rows = [self._run_one(i, m) for i, m in zip(input_ids, attention_mask)]
        except Exception as exc:
            raise BackendError(f"TFLite invoke failed: {exc}") from exc
        return np.stack(rows)

    run_side_by_side = run  # workers is 1: never two calls at once

    def close(self) -> None:
        del self._interp


def create(model_path: Path, options: BackendOptions) -> TfliteBackend:
    return TfliteBackend(model_path, options)

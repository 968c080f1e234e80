"""The explicit, ordered registry of inference backends.

Each backend lives in its own module, imported lazily, exposing ``create``,
``runtime_version`` and ``available_providers``. The order here is the default
preference when no profile says otherwise.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import RuntimeUnavailableError
from .base import Backend, BackendOptions

__all__ = ["REGISTRY", "Available", "Backend", "BackendOptions", "backend_module", "probe"]

# name -> (module, extra that installs its runtime)
REGISTRY: dict[str, tuple[str, str]] = {
    "onnx": ("edge_sentiment.backends.onnx", "onnx"),
    "tflite": ("edge_sentiment.backends.tflite", "tflite"),
}


def backend_module(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise RuntimeUnavailableError(f"unknown runtime {name!r}; known: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name][0])


@dataclass(frozen=True)
class Available:
    """What this machine can run: runtime name -> version, and providers per runtime."""

    runtimes: dict[str, str]
    providers: dict[str, list[str]]


def probe() -> Available:
    """Import each registered runtime, if installed, and list its providers."""
    runtimes: dict[str, str] = {}
    providers: dict[str, list[str]] = {}
    for name in REGISTRY:
        module = backend_module(name)
        version = module.runtime_version()
        if version is not None:
            runtimes[name] = version
            providers[name] = module.available_providers()
    return Available(runtimes, providers)

"""The explicit, ordered registry of inference backends.

Each backend lives in its own module, declaring ``NAME``, ``EXTRA`` and ``DEFAULT_PROVIDERS`` and
exposing ``create``, ``runtime_version`` and ``available_providers``; its runtime is imported
only when used. The order here is the default
preference when no profile says otherwise.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import RuntimeUnavailableError
from .base import Backend, BackendOptions

__all__ = ["NAMES", "REGISTRY", "RUNTIME_CHOICES", "Available", "Backend", "BackendOptions",
           "BackendSpec", "backend_module", "probe"]

# The backend modules, in default preference order. Everything else about a backend (its name,
# the extra that installs its runtime, its default providers) is read from its module: the
# selector, the profiles, the manifest check, the CLIs and the agent config derive from this.
MODULES = ("edge_sentiment.backends.onnx", "edge_sentiment.backends.tflite")


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str
    extra: str
    default_providers: tuple[str, ...]


def _spec(module: str) -> BackendSpec:
    m = importlib.import_module(module)  # cheap: a backend imports its runtime only when used
    return BackendSpec(m.NAME, module, m.EXTRA, tuple(m.DEFAULT_PROVIDERS))


REGISTRY: dict[str, BackendSpec] = {spec.name: spec for spec in map(_spec, MODULES)}
NAMES: tuple[str, ...] = tuple(REGISTRY)
RUNTIME_CHOICES: tuple[str, ...] = ("auto", *NAMES)


def backend_module(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise RuntimeUnavailableError(f"unknown runtime {name!r}; known: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name].module)


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

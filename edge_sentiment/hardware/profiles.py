"""Firmware profiles: one TOML file per board family, validated when loaded.

A profile says how to recognise a board (``[match]``) and how to run on it
(``[runtime]``). Profiles ship in the ``firmware_profiles`` package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..backends import REGISTRY
from ..errors import ProfileError
from ..tomlfile import read_toml
from .detect import HardwareFacts

_MATCH_KEYS = {"arch", "model", "compatible", "jetson", "edgetpu", "cpu_flags"}
# Per backend, ``<name>_providers`` (onnx_providers, tflite_providers, ...) from the registry.
_RUNTIME_KEYS = {"backends", *(f"{name}_providers" for name in REGISTRY), "threads", "precision",
                 "max_batch"}
# Keys that were read once and are refused now, with why (a one-line error, not "unknown").
_RETIRED = {"memory_budget_mb": "it never had an effect; remove it"}
_TOP_KEYS = {"name", "description", "priority", "notes", "match", "runtime"}
BACKENDS = tuple(REGISTRY)


@dataclass(frozen=True)
class MatchRules:
    arch: tuple[str, ...] = ()
    model: str | None = None  # regular expression on the device-tree model
    compatible: tuple[str, ...] = ()  # any of these device-tree compatible strings
    jetson: bool | None = None
    edgetpu: bool | None = None
    cpu_flags: tuple[str, ...] = ()  # all of these

    def matches(self, facts: HardwareFacts) -> bool:
        checks = [
            not self.arch or facts.arch in self.arch,
            self.model is None or bool(re.search(self.model, facts.board_model or "")),
            not self.compatible or bool(set(self.compatible) & set(facts.compatible)),
            self.jetson is None or self.jetson == facts.is_jetson,
            self.edgetpu is None or self.edgetpu == facts.edgetpu,
            set(self.cpu_flags) <= set(facts.cpu_flags),
        ]
        return all(checks)


@dataclass(frozen=True)
class Profile:
    """How to run on one board family."""

    name: str
    description: str
    priority: int
    match: MatchRules
    backends: tuple[str, ...]
    providers: dict[str, tuple[str, ...]]  # backend -> providers in preference order
    threads: int | None
    precision: tuple[str, ...]
    max_batch: int
    notes: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        where = self.source or self.name
        def need(cond: bool, key: str, what: str) -> None:
            if not cond:
                raise ProfileError(f"{where}: {key}: {what}")
        need(bool(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.name)), "name",
             "must be lower-case letters, digits, - and _")
        need(bool(self.backends) and set(self.backends) <= set(BACKENDS), "runtime.backends",
             f"must be a non-empty list from {BACKENDS}")
        need(self.threads is None or self.threads >= 1, "runtime.threads", "must be >= 1")
        need(set(self.precision) <= {"int8", "fp16", "fp32"} and bool(self.precision),
             "runtime.precision", "must list int8, fp16 or fp32")
        need(self.max_batch >= 1, "runtime.max_batch", "must be >= 1")
        if self.match.model is not None:
            try:
                re.compile(self.match.model)
            except re.error as exc:
                raise ProfileError(f"{where}: match.model: bad regular expression: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "backends": list(self.backends),
                **{f"{b}_providers": list(p) for b, p in self.providers.items()},
                "threads": self.threads,
                "precision": list(self.precision), "max_batch": self.max_batch,
                "notes": self.notes}


def _typed(table: dict[str, Any], key: str, typ: type, where: str, default: Any = None) -> Any:
    if key not in table:
        return default
    value = table[key]
    if typ is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProfileError(f"{where}: {key}: must be a list of strings")
        return tuple(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ProfileError(f"{where}: {key}: must be {typ.__name__}")
    return value


def _table(data: dict[str, Any], key: str, allowed: set[str], where: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: [{key}] must be a table")
    for retired in set(table) & set(_RETIRED):
        raise ProfileError(f"{where}: {key}.{retired}: no longer read ({_RETIRED[retired]})")
    unknown = set(table) - allowed
    if unknown:
        raise ProfileError(f"{where}: {key}: unknown keys {sorted(unknown)}")
    return table


def parse_profile(data: dict[str, Any], source: str) -> Profile:
    """Validate one decoded profile; errors name ``source`` and the field."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ProfileError(f"{source}: unknown keys {sorted(unknown)}")
    m = _table(data, "match", _MATCH_KEYS, source)
    r = _table(data, "runtime", _RUNTIME_KEYS, source)
    name = _typed(data, "name", str, source)
    if name is None:
        raise ProfileError(f"{source}: name: missing")
    return Profile(
        name=name,
        description=_typed(data, "description", str, source, ""),
        priority=_typed(data, "priority", int, source, 0),
        notes=_typed(data, "notes", str, source, ""),
        match=MatchRules(
            arch=_typed(m, "arch", list, source, ()),
            model=_typed(m, "model", str, source),
            compatible=_typed(m, "compatible", list, source, ()),
            jetson=_typed(m, "jetson", bool, source),
            edgetpu=_typed(m, "edgetpu", bool, source),
            cpu_flags=_typed(m, "cpu_flags", list, source, ()),
        ),
        backends=_typed(r, "backends", list, source, ()),
        providers={name: _typed(r, f"{name}_providers", list, source, spec.default_providers)
                   for name, spec in REGISTRY.items()},
        threads=_typed(r, "threads", int, source),
        precision=_typed(r, "precision", list, source, ("int8",)),
        max_batch=_typed(r, "max_batch", int, source, 32),
        source=source,
    )


def load_profile_file(path: Path) -> Profile:
    return parse_profile(read_toml(path, ProfileError, path.name), path.name)


def profiles_dir() -> Path:
    return Path(str(resources.files("firmware_profiles")))


def load_profiles(directory: Path | None = None) -> list[Profile]:
    """Every ``*.toml`` profile in ``directory`` (default: the shipped ones), by name."""
    folder = directory or profiles_dir()
    profiles = [load_profile_file(p) for p in sorted(folder.glob("*.toml"))]
    names = [p.name for p in profiles]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ProfileError(f"{folder}: duplicate profile names {sorted(dupes)}")
    return profiles


def match_profile(facts: HardwareFacts, profiles: list[Profile], requested: str = "auto") -> Profile:
    """The named profile, or the highest-priority profile whose rules match ``facts``."""
    if requested != "auto":
        for profile in profiles:
            if profile.name == requested:
                return profile
        raise ProfileError(f"profile {requested!r} not found; known: {', '.join(p.name for p in profiles)}")
    matching = [p for p in profiles if p.match.matches(facts)]
    if not matching:
        raise ProfileError(f"no profile matches arch={facts.arch} model={facts.board_model!r}; "
                           "add one under firmware_profiles/ or pass --profile")
    return max(matching, key=lambda p: (p.priority, p.name))

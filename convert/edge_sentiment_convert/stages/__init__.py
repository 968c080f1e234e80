"""What each build stage's result depends on in the config, so a rerun with a changed config
redoes exactly the stages the change touches (and those after them), instead of reusing a
result made for other settings.

Each stage's inputs include those of the stages it builds on: a new ``[distill]`` reruns the
students and everything after them but keeps the fine-tuned teacher; a new ``[teacher]`` reruns
everything. Adding a student candidate trains only that one; the chosen-student stages
(``tflite``, ``evaluate``, ``speed``) depend on every candidate.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..config import BuildConfig, StudentCfg

# Keys added after builds had saved markers (by their last dotted part), left out of the inputs
# while at these defaults, so a marker written before they existed still matches.
LATE_KEYS: dict[str, Any] = {"arch": "transformer", "kernel": 0, "augment": 0, "features": 0.0,
                             "source_weights": {}, "emoji": False, "counterfactual": 0,
                             "emoji_copies": 0, "keep_identity": False, "calibrate": False,
                             "min_neutral_recall": 0.0, "speed_baseline": "",
                             "negation_copies": 0, "contrast_copies": 0,
                             "reuse": "never", "onnx_quant": "dynamic",
                             "tflite_lengths": (), "blind_except": [],
                             "confidence_map": False, "fit_to_targets": False,
                             "confidence_max_ece": 0.0, "calibrate_tflite": False}
TEACHER_STAGES = ("validate", "teacher", "soft_labels", "vocab", "teacher_onnx", "teacher_dev")
FINAL_STAGES = ("quantize", "calibrate", "tflite", "evaluate", "behaviour", "consistency",
                "speed")
# What each stage builds on. A config field declares the stages that first read it (``at(...)``
# in config.py); a stage's inputs are the fields of it and of every stage it builds on.
# "student" stands for each ``student-<name>`` stage, "final" for each of FINAL_STAGES.
AFTER: dict[str, tuple[str, ...]] = {
    "teacher": (), "validate": ("teacher",), "soft_labels": ("teacher",), "vocab": ("teacher",),
    "teacher_onnx": ("teacher",), "teacher_dev": ("teacher_onnx",),
    "student": ("soft_labels", "vocab", "teacher_onnx"), "final": ("student",),
}


def stage_inputs(cfg: BuildConfig, name: str) -> dict[str, Any]:
    """The config values (dotted keys) the result of stage ``name`` depends on."""
    return {k: v for k, v in _inputs(cfg, name).items()
            if LATE_KEYS.get(k.rsplit(".", 1)[-1], object()) != v}


def _kind(cfg: BuildConfig, name: str) -> tuple[str, StudentCfg | None]:
    if name.startswith("student-"):
        spec = next((s for s in cfg.students if f"student-{s.name}" == name), None)
        if spec is None:
            raise KeyError(f"no student stage {name!r} in this config")
        return "student", spec
    if name in FINAL_STAGES:
        return "final", None
    if name not in AFTER:
        raise KeyError(f"unknown build stage {name!r}")
    return name, None


def upstream(kind: str) -> set[str]:
    """``kind`` and every stage it builds on."""
    out = {kind}
    for before in AFTER[kind]:
        out |= upstream(before)
    return out


def _fields(obj: Any, prefix: str, wanted: set[str]) -> dict[str, Any]:
    return {f"{prefix}{f.name}": getattr(obj, f.name) for f in fields(obj)
            if wanted & set(f.metadata["stages"])}


def _inputs(cfg: BuildConfig, name: str) -> dict[str, Any]:
    kind, spec = _kind(cfg, name)
    wanted = upstream(kind)
    distill = cfg.distill_for(spec) if spec else cfg.distill  # a student's overrides applied
    out = {**_fields(cfg, "", wanted), **_fields(cfg.teacher, "teacher.", wanted),
           **_fields(distill, "distill.", wanted), **_fields(cfg.vocab, "vocab.", wanted)}
    if spec is not None:
        out.update(_fields(spec, "student.", wanted))
    elif kind == "final":  # the choice looks at every candidate
        for s in cfg.students:
            out.update(_fields(s, f"students.{s.name}.", wanted))
    return out


# Inputs a marker may lack because it was written before they were recorded; such a marker
# still matches (the build's data digest came after builds had saved markers).
LATE_INPUTS = ("data",)


def changed_since(saved: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    """What moved since ``saved`` (a stage marker) was written; a marker written before inputs
    were recorded counts as unchanged, and so does one written before a LATE_INPUTS key."""
    if "inputs" not in saved:
        return []
    before = saved["inputs"]
    return changed(before, {k: v for k, v in inputs.items()
                            if k in before or k not in LATE_INPUTS})


def changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every input that differs (a key missing on one side is None)."""
    keys = sorted(set(before) | set(now))
    return [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in keys
            if _jsonish(before.get(k)) != _jsonish(now.get(k))]


def _jsonish(value: Any) -> Any:
    """Tuples and lists compare equal, as they do once a marker has been through JSON."""
    if isinstance(value, (list, tuple)):
        return [_jsonish(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    return value

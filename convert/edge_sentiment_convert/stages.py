"""What each build stage's result depends on in the config, so a rerun with a changed config
redoes exactly the stages the change touches (and those after them), instead of reusing a
result made for other settings.

Each stage's inputs include those of the stages it builds on: a new ``[distill]`` reruns the
students and everything after them but keeps the fine-tuned teacher; a new ``[teacher]`` reruns
everything. Adding a student candidate trains only that one; the chosen-student stages
(``tflite``, ``evaluate``, ``speed``) depend on every candidate.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .config import BuildConfig

# Keys added after builds had saved markers (by their last dotted part), left out of the inputs
# while at these defaults, so a marker written before they existed still matches.
LATE_KEYS: dict[str, Any] = {"arch": "transformer", "kernel": 0, "augment": 0, "features": 0.0,
                             "source_weights": {}, "emoji": False, "counterfactual": 0,
                             "emoji_copies": 0, "keep_identity": False, "calibrate": False,
                             "min_neutral_recall": 0.0, "speed_baseline": "",
                             "negation_copies": 0, "contrast_copies": 0}
TEACHER_STAGES = ("validate", "teacher", "soft_labels", "vocab", "teacher_onnx", "teacher_dev")
FINAL_STAGES = ("calibrate", "tflite", "evaluate", "behaviour", "speed")


def stage_inputs(cfg: BuildConfig, name: str) -> dict[str, Any]:
    """The config values (dotted keys) the result of stage ``name`` depends on."""
    return {k: v for k, v in _inputs(cfg, name).items()
            if LATE_KEYS.get(k.rsplit(".", 1)[-1], object()) != v}


def _inputs(cfg: BuildConfig, name: str) -> dict[str, Any]:
    teacher = {"seed": cfg.seed, "max_seq_length": cfg.max_seq_length,
               **_flat("teacher", asdict(cfg.teacher))}
    if name == "teacher":
        return teacher
    if name == "validate":
        return {**teacher, "distill.unlabeled": cfg.distill.unlabeled}
    if name == "soft_labels":
        return {**teacher, "distill.unlabeled": cfg.distill.unlabeled,
                "distill.augment": cfg.distill.augment,
                "distill.emoji_copies": cfg.distill.emoji_copies,
                "distill.negation_copies": cfg.distill.negation_copies,
                "distill.contrast_copies": cfg.distill.contrast_copies}
    if name == "vocab":
        return {**teacher, "distill.unlabeled": cfg.distill.unlabeled, **_flat("vocab", asdict(cfg.vocab))}
    if name in ("teacher_onnx", "teacher_dev"):
        return {**teacher, "eval_limit": cfg.eval_limit}
    common = {**_inputs(cfg, "soft_labels"), **_inputs(cfg, "vocab"), "eval_limit": cfg.eval_limit,
              "onnx_per_channel": cfg.onnx_per_channel, "speed_runs": cfg.speed_runs}
    if name.startswith("student-"):
        spec = next((s for s in cfg.students if f"student-{s.name}" == name), None)
        if spec is None:
            raise KeyError(f"no student stage {name!r} in this config")
        return {**common, **_flat("distill", asdict(cfg.distill_for(spec))),
                **_flat("student", asdict(spec))}  # the effective settings, overrides applied
    if name not in FINAL_STAGES:
        raise KeyError(f"unknown build stage {name!r}")
    final = {**common, **_flat("distill", asdict(cfg.distill)), "max_onnx_mb": cfg.max_onnx_mb,
             "max_dev_gap": cfg.max_dev_gap, "gap_sources": list(cfg.gap_sources),
             "tflite_quant": cfg.tflite_quant, "speed_texts": cfg.speed_texts,
             "calibrate": cfg.calibrate, "min_neutral_recall": cfg.min_neutral_recall,
             "speed_baseline": cfg.speed_baseline}
    for s in cfg.students:
        final.update(_flat(f"students.{s.name}", asdict(s)))
    return final


def changed_since(saved: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    """What moved since ``saved`` (a stage marker) was written; a marker written before inputs
    were recorded counts as unchanged."""
    return changed(saved["inputs"], inputs) if "inputs" in saved else []


def changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every input that differs (a key missing on one side is None)."""
    keys = sorted(set(before) | set(now))
    return [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in keys
            if _jsonish(before.get(k)) != _jsonish(now.get(k))]


def _flat(prefix: str, data: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{k}": v for k, v in data.items()}


def _jsonish(value: Any) -> Any:
    """Tuples and lists compare equal, as they do once a marker has been through JSON."""
    if isinstance(value, (list, tuple)):
        return [_jsonish(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    return value

"""Stage ``calibrate``: temperature and per-class biases for the student int8 ONNX and the
teacher fp32, each fitted on its own dev outputs (``calibrate.py``); then the eval bundles are
rewritten with them."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sentiment.manifest import Calibration

from .. import report
from ..calibrate import DevSet, Floors, fit, source_score
from ..config import BuildConfig
from ..layout import Artifact
from .evaluate import chosen_eval_bundles

if TYPE_CHECKING:
    from ..build import Build

log = logging.getLogger(__name__)


def calibrate(b: Build, name: str) -> dict[str, Any]:
    """{"student": ..., "teacher": ...} fitted settings; {} with ``calibrate = false``."""
    if not b.cfg.calibrate:
        return {}
    # the shipped ONNX (quantize stage), uncalibrated: the student stage wrote this bundle with
    # its dynamic int8 file
    b.single_bundle(f"cand-{name}", b.final_onnx(name), "onnx", "int8", b.final_tokenizer)
    sources = list(b.cfg.teacher.sources)

    def dev(which: Artifact) -> list[DevSet]:
        return report.dev_sets(b.layout.artifact(which, name), "onnx", b.data, sources, b.binary)

    # the teacher first: the student's floors may hold it within max_dev_gap of the teacher
    teacher_dev = dev(Artifact.TEACHER_FP32)
    teacher = fit(teacher_dev, b.cfg.min_neutral_recall, b.cfg.confidence_map)
    scores = {d.source: source_score(d, np.array(teacher.bias))[0] for d in teacher_dev}
    student = fit(dev(Artifact.STUDENT_INT8), floors(b.cfg, scores), b.cfg.confidence_map,
                  b.cfg.confidence_max_ece)
    out = {"student": asdict(student), "teacher": asdict(teacher)}
    log.info("calibration: %s", out)
    return out


def floors(cfg: BuildConfig, teacher: dict[str, float]) -> Floors | float:
    """The student's bias floors: with ``fit_to_targets``, the card's decision targets held on
    the gap sources' dev splits (``teacher``: each source's teacher dev score, 0-1); else the
    soft neutral-recall floor of every 3-class source."""
    if not cfg.fit_to_targets:
        return cfg.min_neutral_recall
    gap = cfg.gap_sources or tuple(cfg.teacher.sources)
    return Floors(neutral_recall=cfg.min_neutral_recall, sources=gap,
                  teacher=tuple((s, teacher[s]) for s in gap if s in teacher),
                  max_gap=cfg.max_dev_gap / 100, binary=cfg.targets.get("min_sst2_dev", 0) / 100,
                  weight=100.0)


def apply_calibration(b: Build, name: str, fitted: dict[str, Any]) -> None:
    """Rewrite the eval bundles with their calibration (cheap; idempotent)."""
    b.cal = {who: Calibration(f["temperature"], tuple(f["bias"]), tuple(f.get("confidence", ())))
             for who, f in fitted.items()}
    b.single_bundle(f"cand-{name}", b.final_onnx(name), "onnx", "int8", b.final_tokenizer)
    for precision in ("fp32", "int8"):
        b.single_bundle(f"teacher-{precision}", b.layout.teacher_onnx(precision), "onnx",
                        precision, b.teacher_tokenizer, who="teacher")
    # The chosen student's TFLite, once its stage made it with this config: a rerun that chose
    # another student, or changed the TFLite settings, has a stale file or none (a folder built
    # by another config can hold a student of the same name), and the tflite stage writes these
    # bundles (calibrated) when it runs.
    if b.is_current("tflite", name):
        chosen_eval_bundles(b, name)

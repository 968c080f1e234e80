"""Stages ``teacher_onnx`` (the teacher exported, fp32 and int8, as one-artifact bundles) and
``teacher_dev`` (its dev scores: the bar ``max_dev_gap`` measures students against)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import report
from ..export import export_onnx, quantize_teacher

if TYPE_CHECKING:
    from ..build import Build


@dataclass(frozen=True)
class TeacherExport:
    fp32_bytes: int


def teacher_onnx(b: Build) -> TeacherExport:
    fp32, int8 = b.layout.teacher_onnx("fp32"), b.layout.teacher_onnx("int8")
    export_onnx(b.load_teacher(), fp32, opset=17)
    quantize_teacher(fp32, int8)
    for precision in ("fp32", "int8"):
        b.single_bundle(f"teacher-{precision}", b.layout.teacher_onnx(precision), "onnx",
                        precision, b.teacher_tokenizer, who="teacher")
    return TeacherExport(fp32.stat().st_size)


def teacher_dev(b: Build) -> dict[str, float]:
    """The teacher fp32's dev score per training source (macro-F1; accuracy for a binary
    source): the bar for ``max_dev_gap`` (on ``gap_sources``, or on every source)."""
    dev = report.eval_bundle(b.layout.eval_bundle("teacher-fp32"), "onnx", b.data,
                             b.cfg.eval_limit, splits=("dev",))
    return report.score_by_source(dev, "dev", list(b.cfg.teacher.sources))

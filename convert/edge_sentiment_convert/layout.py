"""Where a build keeps everything under its out folder, and the artifacts it evaluates.

One object owns the paths, so a stage never spells out another stage's file names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Artifact(StrEnum):
    """The models a build evaluates, times and reports; the value is the card's label (and the
    key in ``evaluation.json`` and ``behaviour.json``)."""

    TEACHER_FP32 = "teacher fp32 (ONNX)"
    TEACHER_INT8 = "teacher int8 (ONNX)"
    STUDENT_FP32 = "student fp32 (ONNX)"
    STUDENT_INT8 = "student int8 (ONNX)"
    STUDENT_TFLITE = "student int8 (TFLite)"

    @property
    def runtime(self) -> str:
        return "tflite" if self is Artifact.STUDENT_TFLITE else "onnx"


@dataclass(frozen=True)
class Layout:
    out: Path

    @property
    def stages(self) -> Path:
        return self.out / "stages"  # one marker per finished stage

    @property
    def teacher(self) -> Path:
        return self.out / "teacher"

    @property
    def teacher_weights(self) -> Path:
        return self.teacher / "teacher.pt"

    def teacher_onnx(self, precision: str) -> Path:
        return self.teacher / f"teacher.{precision}.onnx"

    @property
    def soft_logits(self) -> Path:
        return self.teacher / "soft_logits.npy"

    @property
    def features(self) -> Path:
        return self.teacher / "features.npy"

    @property
    def vocab(self) -> Path:
        return self.out / "vocab"

    @property
    def vocab_tokenizer(self) -> Path:
        return self.vocab / "tokenizer.json"

    @property
    def vocab_keep(self) -> Path:
        return self.vocab / "keep.json"

    def student(self, name: str) -> Path:
        return self.out / "students" / name

    def student_onnx(self, name: str, quant: str) -> Path:
        """The student ``name``'s int8 ONNX in the scheme ``quant`` (config ``onnx_quant``)."""
        return self.student(name) / ("student.int8.onnx" if quant == "dynamic"
                                     else f"student.{quant}.onnx")

    def eval_bundle(self, name: str) -> Path:
        """A one-artifact bundle the runtime evaluates exactly that artifact through."""
        return self.out / "eval_bundles" / name

    def artifact(self, which: Artifact, chosen: str) -> Path:
        """The eval bundle of ``which`` for the chosen student ``chosen``."""
        names = {Artifact.TEACHER_FP32: "teacher-fp32", Artifact.TEACHER_INT8: "teacher-int8",
                 Artifact.STUDENT_FP32: "student-fp32", Artifact.STUDENT_INT8: f"cand-{chosen}",
                 Artifact.STUDENT_TFLITE: "student-int8-tflite"}
        return self.eval_bundle(names[which])

    @property
    def bundle(self) -> Path:
        return self.out / "bundle"

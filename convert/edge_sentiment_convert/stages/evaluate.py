"""Stage ``evaluate``: every artifact (``layout.Artifact``) on every split, through the runtime
users run (``edge-sentiment eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import report
from ..layout import Artifact

if TYPE_CHECKING:
    from ..build import Build


def chosen_eval_bundles(b: Build, name: str) -> None:
    """One-artifact bundles of the chosen student's fp32 ONNX and int8 TFLite files."""
    folder, tok = b.layout.student(name), b.final_tokenizer
    b.single_bundle("student-fp32", folder / "student.fp32.onnx", "onnx", "fp32", tok)
    b.single_bundle("student-int8-tflite", folder / "student.int8.tflite", "tflite", "int8", tok)


def artifacts(b: Build, name: str) -> dict[Artifact, tuple[Path, str]]:
    """Each artifact's eval bundle and runtime, for the chosen student ``name``."""
    if not b.layout.artifact(Artifact.STUDENT_FP32, name).exists():  # tflite writes it
        chosen_eval_bundles(b, name)
    return {a: (b.layout.artifact(a, name), a.runtime) for a in Artifact}


def evaluate(b: Build, name: str) -> dict[str, Any]:
    return {str(a): report.eval_bundle(path, rt, b.data, b.cfg.eval_limit)
            for a, (path, rt) in artifacts(b, name).items()}

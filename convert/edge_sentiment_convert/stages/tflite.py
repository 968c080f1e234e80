"""Stage ``tflite``: the chosen student as int8 TFLite; with ``tflite_quant = "auto"`` both
schemes are made and scored against the ONNX int8 artifact on dev (``pick_tflite_mode``)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import report
from ..choose import pick_tflite_mode
from ..config import TFLITE_SCHEMES
from ..export import export_tflite, quantize_tflite
from .evaluate import chosen_eval_bundles

if TYPE_CHECKING:
    from ..build import Build

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tflite:
    int8_bytes: int
    mode: str
    dev_agreement: dict[str, float]  # scheme -> dev agreement with ONNX int8 ("auto" only)


def tflite(b: Build, name: str) -> Tflite:
    folder = b.layout.student(name)
    export_tflite(b.trained_student(name), folder / "student.fp32.tflite", b.cfg.max_seq_length,
                  b.cfg.tflite_lengths)
    modes = TFLITE_SCHEMES if b.cfg.tflite_quant == "auto" else (b.cfg.tflite_quant,)
    made = {m: quantize_tflite(folder / "student.fp32.tflite",
                               folder / f"student.int8.{m}.tflite", m) for m in modes}
    agreement = dev_agreement(b, name, made) if len(made) > 1 else {}
    mode = pick_tflite_mode(modes, agreement)
    shutil.copyfile(made[mode], folder / "student.int8.tflite")
    chosen_eval_bundles(b, name)
    return Tflite((folder / "student.int8.tflite").stat().st_size, mode, agreement)


def dev_agreement(b: Build, name: str, made: dict[str, Path]) -> dict[str, float]:
    bundles = {mode: b.single_bundle(f"tflite-{mode}", path, "tflite", "int8", b.final_tokenizer)
               for mode, path in made.items()}
    return scheme_agreement(b.layout.eval_bundle(f"cand-{name}"), bundles, b.data,
                            b.cfg.eval_limit)


def scheme_agreement(onnx: Path, tflite: dict[str, Path], data: Path, limit: int
                     ) -> dict[str, float]:
    """Each TFLite scheme's share of dev labels equal to the ONNX int8 bundle's (``tflite``:
    scheme -> one-artifact bundle), over every dev split of ``data``."""
    ref = report.eval_bundle(onnx, "onnx", data, limit, splits=("dev",))
    out = {}
    for mode, bundle in tflite.items():
        res = report.eval_bundle(bundle, "tflite", data, limit, splits=("dev",))
        out[mode] = report.agreement(ref, res, split="dev")["all_dev"]
    log.info("TFLite ONNX dev agreement by quantization: %s", out)
    return out

"""A built bundle's student exported again as a config's last stages say: the weights recovered
from its int8 ONNX file (``recover.py``), fine-tuned when ``[finetune] epochs`` > 0
(``finetune.py``), then int8 ONNX (static, as Conv nodes with ``onnx_graph = "conv"``, or
dynamic) and TFLite with one signature per ``tflite_lengths`` entry, made by the build's own
export functions. Fine-tuned weights are exported for both runtimes."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path
from typing import Any

from edge_sentiment.bundle import Bundle
from edge_sentiment.errors import ConfigError

from .cnn import ConvStudent
from .config import TFLITE_SCHEMES, BuildConfig
from .data import Example, transfer_rows
from .export import (
    calibration_feeds,
    export_onnx,
    export_tflite,
    quantize_onnx,
    quantize_tflite,
)
from .finetune import finetune
from .recover import check, embedding_rows, recover_weights
from .stages.quantize import calibration_texts, static_int8
from .students import make_student

log = logging.getLogger(__name__)
CHECK_TEXTS = 500  # dev texts the recovered module is compared with the parent's ONNX on


def wanted(cfg: BuildConfig) -> bool:
    """Whether the config asks for files the student stage's do not have."""
    return cfg.onnx_quant == "static" or bool(cfg.tflite_lengths) or cfg.finetune.epochs > 0


def reexport(cfg: BuildConfig, data: Path, parent: Bundle, tokenizer: Path, dev: list[str],
             work: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The new model files by runtime (``write_bundle``'s model dicts), and what the card says
    about them. TFLite schemes are chosen later (``pick``), against the new ONNX file."""
    m = parent.manifest
    if len(cfg.students) != 1:
        raise ConfigError("the config must name exactly one [[students]] entry: the bundle's")
    onnx = next(a for a in m.artifacts if a.runtime == "onnx")
    if onnx.precision != "int8":
        raise ConfigError(f"{onnx.file}: an int8 ONNX student is needed to recover its weights")
    student = make_student(cfg.students[0], embedding_rows(parent.root / onnx.file),
                           m.max_seq_length)
    if not isinstance(student, ConvStudent):
        raise ConfigError(f"student {cfg.students[0].name!r}: only CNN students (arch = \"cnn\") "
                          "can be read back from an ONNX file")
    model = recover_weights(student, parent.root / onnx.file)
    sample = random.Random(cfg.seed).sample(dev, min(CHECK_TEXTS, len(dev)))
    recovered = check(model, parent.root / onnx.file,
                      calibration_feeds(parent.root / m.tokenizer.file, sample, m.max_seq_length))
    log.info("recovered the student from %s: %s", onnx.file, recovered)
    work.mkdir(parents=True, exist_ok=True)
    # read once: fine-tuning trains on it, static int8 fits its scales on a sample of it
    transfer = transfer_rows(data, cfg) \
        if cfg.finetune.epochs > 0 or cfg.onnx_quant == "static" else []
    tuned = finetune(model, cfg, data, transfer, tokenizer, m.max_seq_length) \
        if cfg.finetune.epochs > 0 else {}
    out: dict[str, dict[str, Any]] = {}
    if cfg.onnx_quant == "static" or tuned:
        out["onnx"] = _onnx(model, cfg, transfer, tokenizer, m.max_seq_length, work)
    if cfg.tflite_lengths or tuned:
        fp32 = export_tflite(model, work / "student.fp32.tflite", m.max_seq_length,
                             cfg.tflite_lengths)
        modes = TFLITE_SCHEMES if cfg.tflite_quant == "auto" else (cfg.tflite_quant,)
        out["tflite"] = {"path": work / f"student.int8.{modes[0]}.tflite", "runtime": "tflite",
                         "precision": "int8", "input_shape": [1, m.max_seq_length],
                         "lengths": list(cfg.tflite_lengths),
                         "modes": {mode: quantize_tflite(fp32, work / f"student.int8.{mode}.tflite",
                                                         mode) for mode in modes}}
    return out, {"recovered": recovered, "onnx_quant": cfg.onnx_quant,
                 "onnx_graph": cfg.onnx_graph, "tflite_lengths": list(cfg.tflite_lengths),
                 "finetune": tuned}


def _onnx(model: ConvStudent, cfg: BuildConfig, transfer: list[Example], tokenizer: Path,
          max_len: int, work: Path) -> dict[str, Any]:
    """The int8 ONNX model dict: static (scales from the build's calibration texts) or dynamic
    (as the student stage quantizes)."""
    if cfg.onnx_quant == "static":
        conv = cfg.conv_form
        fp32 = export_onnx(model, work / ("student.conv.fp32.onnx" if conv else "student.fp32.onnx"),
                           opset=20 if conv else 17, conv=conv)
        feeds = calibration_feeds(tokenizer, calibration_texts(transfer, cfg.seed), max_len)
        path = static_int8(fp32, work / "student.int8.onnx", feeds, cfg)
    else:
        path = quantize_onnx(export_onnx(model, work / "student.fp32.onnx"),
                             work / "student.int8.onnx", per_channel=cfg.onnx_per_channel)
    return {"path": path, "runtime": "onnx", "precision": "int8", "input_shape": [None, None],
            "lengths": []}


def pick(model: dict[str, Any], agreement: dict[str, float], work: Path) -> dict[str, Any]:
    """The TFLite model dict with the scheme ``choose.pick_tflite_mode`` takes, copied to
    ``student.int8.tflite`` (the bundle's file name)."""
    from .choose import pick_tflite_mode

    mode = pick_tflite_mode(tuple(model["modes"]), agreement)  # in the order made
    path = work / "student.int8.tflite"
    shutil.copyfile(work / f"student.int8.{mode}.tflite", path)
    return {k: v for k, v in model.items() if k != "modes"} | {"path": path, "mode": mode}


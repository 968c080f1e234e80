"""Stage ``quantize``: the chosen student's shipped ONNX int8 form (``onnx_quant``).

"dynamic" is the student stage's own ``student.int8.onnx`` (activation scales computed per
call). "static" quantizes the same ``student.fp32.onnx`` again with activation scales fitted once
on transfer texts, so a text gets the same scores alone or in any batch. Neither retrains.
With ``onnx_graph = "conv"`` the static form starts from the trained weights exported again
with each convolution as one Conv node (``student.conv.fp32.onnx``): the same function in
fewer nodes. ``onnx_graph = "fused"`` quantizes that form and rewrites it so each int8 weight
product gives float (``int8_graph.py``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import Example
from ..export import calibration_feeds, export_onnx, quantize_onnx_static
from ..int8_graph import fuse_file

if TYPE_CHECKING:
    import numpy as np

    from ..build import Build
    from ..config import BuildConfig

CALIBRATION_TEXTS = 512  # transfer texts the static scales are fitted on


def quantize(b: Build, name: str) -> dict[str, Any]:
    path = b.final_onnx(name)
    if b.cfg.onnx_quant == "static":
        feeds = calibration_feeds(b.final_tokenizer, calibration_texts(b.transfer_set(), b.cfg.seed),
                                  b.cfg.max_seq_length)
        fp32 = b.layout.student(name) / "student.fp32.onnx"
        if b.cfg.conv_form:
            fp32 = conv_export(b, name)
        static_int8(fp32, path, feeds, b.cfg)
    return {"onnx_quant": b.cfg.onnx_quant, "onnx_graph": b.cfg.onnx_graph, "file": path.name,
            "mb": round(path.stat().st_size / 1e6, 3), "nodes": _nodes(path)}


def static_int8(fp32: Path, out: Path, feeds: list[dict[str, np.ndarray]], cfg: BuildConfig
                ) -> Path:
    """Static int8 of ``fp32`` as the config's ``onnx_graph`` says ("fused": then rewritten by
    ``int8_graph``); the build's quantize stage and rebundle both make it here."""
    quantize_onnx_static(fp32, out, feeds, per_channel=cfg.onnx_per_channel)
    return fuse_file(out, out) if cfg.onnx_graph == "fused" else out


def calibration_texts(transfer: list[Example], seed: int) -> list[str]:
    """The transfer texts static activation scales are fitted on: a seeded sample."""
    texts = [e.text for e in transfer]
    return random.Random(seed).sample(texts, min(CALIBRATION_TEXTS, len(texts)))


def conv_export(b: Build, name: str) -> Path:
    """The student ``name``'s trained weights (``student.pt``) as an fp32 graph with one Conv
    node per convolution, opset 20 (a Gelu node ONNX Runtime fuses)."""
    return export_onnx(b.trained_student(name), b.layout.student(name) / "student.conv.fp32.onnx",
                       opset=20, conv=True)


def _nodes(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path)).graph.node)

"""Stage ``quantize``: the chosen student's shipped ONNX int8 form (``onnx_quant``).

"dynamic" is the student stage's own ``student.int8.onnx`` (activation scales computed per
call). "static" quantizes the same ``student.fp32.onnx`` again with activation scales fitted once
on transfer texts, so a text gets the same scores alone or in any batch. Neither retrains."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ..export import calibration_feeds, quantize_onnx_static

if TYPE_CHECKING:
    from ..build import Build

CALIBRATION_TEXTS = 512  # transfer texts the static scales are fitted on


def quantize(b: Build, name: str) -> dict[str, Any]:
    path = b.final_onnx(name)
    if b.cfg.onnx_quant == "static":
        texts = [e.text for e in b.transfer_set()]
        sample = random.Random(b.cfg.seed).sample(texts, min(CALIBRATION_TEXTS, len(texts)))
        feeds = calibration_feeds(b.layout.vocab_tokenizer, sample, b.cfg.max_seq_length)
        quantize_onnx_static(b.layout.student(name) / "student.fp32.onnx", path, feeds,
                             per_channel=b.cfg.onnx_per_channel)
    return {"onnx_quant": b.cfg.onnx_quant, "file": path.name,
            "mb": round(path.stat().st_size / 1e6, 3)}

"""A built bundle's trained CNN student, back in its torch module from the bundle's int8 ONNX
file (``student.int8.onnx`` of the student stage: dynamic int8, per-tensor weights).

Each weight is read as the int8 model computes with it, ``(q - zero_point) * scale``, so the
module holds exactly the weights the bundle ships: quantizing them again per tensor gives the
same integers. Named initializers (LayerNorm weights, biases) are copied; the Linear weights,
which the exporter names ``onnx::MatMul_<n>`` in the order the forward pass uses them, are
matched in that order to the module's Linear layers and must have their shapes. A module that
does not fit the file is refused; ``check`` then compares the module with the ONNX file on real
texts, so a wrong match cannot pass unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_sentiment.errors import ConfigError

from .cnn import ConvStudent

MIN_AGREEMENT = 0.99  # labels of the module against the int8 file, clear dev texts
MARGIN = 0.25  # logits: a text the file decides clearly


def recover_weights(model: ConvStudent, onnx_path: Path) -> ConvStudent:
    """``model`` with the weights of ``onnx_path`` loaded (strict), in eval mode."""
    import onnx
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i)
             for i in onnx.load(str(onnx_path)).graph.initializer}
    state = model.state_dict()
    quantized = sorted((k[:-len("_quantized")] for k in inits
                        if k.startswith("onnx::MatMul_") and k.endswith("_quantized")),
                       key=lambda k: int(k.rsplit("_", 1)[1]))
    linear = [k for k in state if k.endswith(".weight") and state[k].dim() == 2
              and k not in ("word.weight", "head.weight")]
    if len(quantized) != len(linear):
        raise ConfigError(f"{onnx_path.name}: {len(quantized)} int8 MatMul weights, the config's "
                          f"student has {len(linear)} Linear layers")
    new = {k: torch.from_numpy(inits[k].copy()) for k in state if k in inits}
    new["word.weight"] = _dequantized(inits, "word.weight")
    new["head.weight"] = _dequantized(inits, "head.weight_Transposed").T
    new.update({k: _dequantized(inits, q).T for k, q in zip(linear, quantized)})
    bad = [k for k in state if k not in new or tuple(new[k].shape) != tuple(state[k].shape)]
    if bad:
        raise ConfigError(f"{onnx_path.name}: the config's student does not fit its weights "
                          f"({', '.join(bad[:4])})")
    model.load_state_dict({k: v.contiguous() for k, v in new.items()}, strict=True)
    return model.eval()


def embedding_rows(onnx_path: Path) -> int:
    """The vocabulary size the int8 ONNX student was trained with (its embedding's rows)."""
    import onnx

    for init in onnx.load(str(onnx_path)).graph.initializer:
        if init.name == "word.weight_quantized":
            return int(init.dims[0])
    raise ConfigError(f"{onnx_path.name}: no int8 word embedding (not a dynamic int8 CNN student)")


def _dequantized(inits: dict[str, Any], base: str) -> torch.Tensor:
    try:
        q, zero, scale = (inits[f"{base}_{part}"] for part in ("quantized", "zero_point", "scale"))
    except KeyError as exc:
        raise ConfigError(f"no int8 weight {base!r} in the ONNX file (not a dynamic int8 CNN "
                          "student)") from exc
    return torch.from_numpy((q.astype(np.float32) - np.float32(zero)) * np.float32(scale))


def check(model: ConvStudent, onnx_path: Path, feeds: list[dict[str, np.ndarray]]
          ) -> dict[str, float]:
    """The module against the int8 file, one text per call: the share of equal labels among the
    texts the file decides by a clear margin (top two logits ``MARGIN`` apart or more; on a
    near-tie int8 activations alone can flip a label), over all texts, and the largest logit
    difference. A weight matched to the wrong layer changes most labels, not a few."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    same = clear = clear_same = 0
    worst = 0.0
    with torch.no_grad():
        for feed in feeds:
            ref = session.run(None, feed)[0][0]
            mine = model(*(torch.from_numpy(feed[k]) for k in ("input_ids", "attention_mask")))[0]
            hit = int(ref.argmax()) == int(mine.argmax())
            top = np.sort(ref)
            if top[-1] - top[-2] >= MARGIN:
                clear, clear_same = clear + 1, clear_same + hit
            same += hit
            worst = max(worst, float(np.abs(ref - mine.numpy()).max()))
    agreement = clear_same / clear if clear else 0.0
    if agreement < MIN_AGREEMENT:
        raise ConfigError(f"{onnx_path.name}: the recovered student agrees with it on "
                          f"{100 * agreement:.1f}% of the {clear} dev texts it decides clearly "
                          f"(< {100 * MIN_AGREEMENT:.0f}%)")
    return {"label_agreement": round(same / max(1, len(feeds)), 4),
            "clear_agreement": round(agreement, 4), "clear": clear,
            "max_logit_diff": round(worst, 4), "n": len(feeds)}

"""Attack family: bundles whose model or goldens lie. The load self-test checks the model's output
(finite, one score per label, batch agreeing with single texts) and a bundle must carry goldens
of at least two labels; each bad bundle is refused with our own error, never served."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.errors import EdgeSentimentError, ManifestError

onnx = pytest.importorskip("onnx", reason="onnx comes with the test extra (convert)")


def _nan_model(path: Path, width: int = 3) -> None:
    """logits[b, :] = 0 * sum(input_ids[b]) + NaN: the right shape, no usable number."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ReduceSum", ["f", "axes"], ["s"], keepdims=1),
             helper.make_node("Mul", ["s", "zero"], ["z"]),
             helper.make_node("Add", ["z", "nan"], ["logits"])]
    inits = [helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
             helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
             helper.make_tensor("nan", TensorProto.FLOAT, [1, width], [float("nan")] * width)]
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["b", "l"])
           for n in ("input_ids", "attention_mask")]
    out = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", width])]
    graph = helper.make_graph(nodes, "nan", ins, out, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _onnx_only(data: dict[str, Any]) -> None:
    data["artifacts"] = [a for a in data["artifacts"] if a["runtime"] == "onnx"]


def _replace_model(bundle: Path) -> None:
    import hashlib

    data = json.loads((bundle / "manifest.json").read_text())
    for art in data["artifacts"]:
        _nan_model(bundle / art["file"])
        blob = (bundle / art["file"]).read_bytes()
        art["sha256"], art["bytes"] = hashlib.sha256(blob).hexdigest(), len(blob)
    (bundle / "manifest.json").write_text(json.dumps(data))


def test_a_model_that_outputs_nan_is_refused(bundle_copy: Callable[..., Path]) -> None:
    bundle = bundle_copy(_onnx_only)
    _replace_model(bundle)
    with pytest.raises(EdgeSentimentError) as err:
        SentimentClassifier.load(bundle, runtime="onnx")
    assert err.value.exit_code == 5 and "NaN" in str(err.value)


def test_a_label_count_the_model_does_not_output_is_refused(
        bundle_copy: Callable[..., Path]) -> None:
    def four_labels(data: dict[str, Any]) -> None:
        _onnx_only(data)
        data["labels"] = [*data["labels"], "mixed"]
        data.pop("calibration", None)
        data["golden_tolerance"] = 1.0

    bundle = bundle_copy(four_labels)
    done = subprocess.run([sys.executable, "-m", "edge_sentiment", "classify", "--bundle",
                           str(bundle), "--runtime", "onnx", "x"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 5, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("edge-sentiment: error")]
    assert len(errors) == 1 and "shape" in errors[0], done.stderr


@pytest.mark.parametrize("goldens", [[], "one_label"])
def test_a_bundle_needs_goldens_of_two_labels(bundle_copy: Callable[..., Path],
                                              goldens: Any) -> None:
    def edit(data: dict[str, Any]) -> None:
        if goldens == "one_label":
            data["golden"] = [g for g in data["golden"] if g["label"] == "positive"]
        else:
            data["golden"] = goldens

    with pytest.raises(ManifestError, match="at least two labels"):
        SentimentClassifier.load(bundle_copy(edit), runtime="onnx")

"""TFLite at several lengths (``tflite_lengths``): one file, one signature per fixed length,
weights stored once; the runtime runs each text in the shortest signature that holds it and
gets the scores the full-length graph gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("litert_torch")
pytestmark = pytest.mark.slow  # three litert-torch conversions

from edge_sentiment import SentimentClassifier  # noqa: E402
from edge_sentiment.backends.tflite import shortest_fit  # noqa: E402
from edge_sentiment.errors import EdgeSentimentError  # noqa: E402
from edge_sentiment_convert.bundle_writer import write_bundle  # noqa: E402
from edge_sentiment_convert.cnn import ConvConfig, ConvStudent  # noqa: E402
from edge_sentiment_convert.export import export_onnx, export_tflite  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "fixtures"
TOKENIZER = FIX / "tiny_bundle" / "tokenizer.json"
LABELS = ("negative", "neutral", "positive")
TEXTS = ["fine", "the battery died after two days and support never answered my emails",
         "good value", "it works but the screen is dim and the sound is thin, not great at all"
         " for the price I paid last month"]


def test_shortest_fit_picks_the_shortest_length_that_holds_the_text() -> None:
    lengths = [16, 32, 64, 128]
    assert [shortest_fit(lengths, n) for n in (1, 16, 17, 32, 33, 64, 65, 128, 500)] == \
        [0, 0, 1, 1, 2, 2, 3, 3, 3]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("lengths")
    vocab = len(json.loads(TOKENIZER.read_text())["model"]["vocab"])
    torch.manual_seed(0)
    model = ConvStudent(ConvConfig(vocab_size=vocab, hidden=96, layers=2, emb_rank=64,
                                   max_len=32, attention=1, heads=4, intermediate=64)).eval()
    (tmp / "weights").write_text(str(4 * sum(p.numel() for p in model.parameters())))
    return {"onnx": export_onnx(model, tmp / "model.fp32.onnx"),
            "multi": export_tflite(model, tmp / "multi.fp32.tflite", 32, (8, 16, 32)),
            "single": export_tflite(model, tmp / "single.fp32.tflite", 32), "tmp": tmp}


def bundle(files: dict[str, Path], name: str, lengths: list[int]) -> Path:
    out = files["tmp"] / name
    write_bundle(out, name="lengths", version="0.0.1", labels=LABELS, max_seq_length=32,
                 tokenizer_file=TOKENIZER,
                 models=[{"path": files["onnx"], "runtime": "onnx", "precision": "fp32",
                          "input_shape": [None, None]},
                         {"path": files["multi"], "runtime": "tflite", "precision": "fp32",
                          "input_shape": [1, 32], "lengths": lengths}],
                 golden_texts=TEXTS, reference_texts=TEXTS, per_label=1)
    return out


def test_one_file_holds_every_length_with_the_weights_once(files: dict[str, Path]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(files["multi"])).get_signature_list()
    assert sorted(signatures) == ["len16", "len32", "len8"]
    weights = int((files["tmp"] / "weights").read_text())  # fp32 bytes
    extra = files["multi"].stat().st_size - files["single"].stat().st_size
    assert 0 < extra < weights / 2, (extra, weights)  # two more graphs, not two more copies


def test_each_text_scores_as_in_the_full_length_graph(files: dict[str, Path]) -> None:
    root = bundle(files, "good", [8, 16, 32])
    assert json.loads((root / "manifest.json").read_text())["artifacts"][1]["lengths"] == [8, 16, 32]
    tfl = SentimentClassifier.load(root, runtime="tflite")
    onnx = SentimentClassifier.load(root, runtime="onnx")
    assert tfl.info.backend == "tflite"
    for a, b in zip(tfl.classify(TEXTS), onnx.classify(TEXTS)):
        assert a.label == b.label
        assert max(abs(a.scores[k] - b.scores[k]) for k in LABELS) < 1e-4
    alone = [tfl.classify(t).scores for t in TEXTS]
    together = [p.scores for p in tfl.classify(TEXTS)]
    assert np.allclose([[s[k] for k in LABELS] for s in alone],
                       [[s[k] for k in LABELS] for s in together], atol=1e-6)


def test_a_length_the_file_lacks_is_refused(files: dict[str, Path]) -> None:
    root = bundle(files, "bad", [8, 16, 32])
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["artifacts"][1]["lengths"] = [4, 32]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeSentimentError, match=r"lacks the signatures \['len4'\]"):
        SentimentClassifier.load(root, runtime="tflite")
    manifest["artifacts"][1].pop("lengths")
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeSentimentError, match="lists no lengths"):
        SentimentClassifier.load(root, runtime="tflite")

"""The smoke config runs the whole conversion pipeline on the committed fixture data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.bundle import open_bundle

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_smoke_bundle_loads_and_passes_self_test(smoke_bundle: Path, runtime: str) -> None:
    bundle = smoke_bundle / "bundle"
    manifest = open_bundle(bundle).manifest
    assert {a.runtime for a in manifest.artifacts} == {"onnx", "tflite"}
    assert all(a.precision == "int8" for a in manifest.artifacts)
    assert manifest.golden, "the build must write golden examples"
    tflite = next(a for a in manifest.artifacts if a.runtime == "tflite")
    assert tflite.lengths == (16, 32, 64) and tflite.input_shape == (1, 64)
    clf = SentimentClassifier.load(bundle, runtime=runtime)  # runs the golden self-test
    assert clf.info.backend == runtime
    assert clf.classify("fine").label in manifest.labels


@pytest.mark.slow
def test_smoke_writes_card_tar_and_resumes(smoke_bundle: Path) -> None:
    card = (smoke_bundle / "bundle" / "MODEL_CARD.md").read_text()
    for needle in ("Scores per split", "Behaviour", "Calibration", "Latency", "agreement",
                   "teacher fp32", "student int8 (TFLite)", "int8 dot product:", "Targets",
                   "emoji_known", "identity_religion"):
        assert needle in card
    assert "met: student int8 ONNX" in card  # the smoke config's own [targets]
    assert "met: student int8 ONNX labels the same alone and in batches on 100.00%" in card
    assert list((smoke_bundle / "bundle").glob("confusion_*.png"))
    assert (smoke_bundle / "edge-sentiment-smoke-0.0.1.tar").is_file()
    SentimentClassifier.load(smoke_bundle / "edge-sentiment-smoke-0.0.1.tar", runtime="onnx")
    again = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "build", "--config",
                            "convert/configs/smoke.toml", "--data", "tests/fixtures/data",
                            "--out", str(smoke_bundle)], cwd=ROOT, capture_output=True, text=True,
                           check=False)
    assert again.returncode == 0 and "cached" in again.stderr


@pytest.mark.slow
def test_smoke_bundle_onnx_is_static_int8_and_batch_independent(smoke_bundle: Path) -> None:
    import onnx

    from edge_sentiment.evaluate import batch_consistency, read_labeled_tsv

    bundle = smoke_bundle / "bundle"
    onnx_file = next(bundle.glob("*.onnx"))
    ops = {n.op_type for n in onnx.load(str(onnx_file)).graph.node}
    # static int8, each weight product giving float (onnx_graph = "fused")
    assert "MatMulIntegerToFloat" in ops and "DynamicQuantizeLinear" not in ops
    assert "QLinearConv" not in ops
    texts, _ = read_labeled_tsv(ROOT / "tests/fixtures/data/reviews/dev.tsv")
    clf = SentimentClassifier.load(bundle, runtime="onnx")
    result = batch_consistency(clf, texts, batch=16)
    assert result["label_agreement"] == 1.0 and result["max_score_diff"] < 1e-5, result


@pytest.mark.slow
def test_smoke_bundle_is_calibrated_and_checked(smoke_bundle: Path) -> None:
    bundle = smoke_bundle / "bundle"
    manifest = open_bundle(bundle).manifest
    assert manifest.calibration is not None and manifest.calibration.temperature > 0
    behaviour = json.loads((bundle / "behaviour.json").read_text())
    names = {t["name"] for t in behaviour["student int8 (ONNX)"]["tests"]}
    assert {"negated_negative", "identity_religion", "emoji_known"} <= names
    emoji = next(t for t in behaviour["student int8 (ONNX)"]["tests"] if t["name"] == "emoji_known")
    assert emoji["failures"] == 0  # every common emoji is a token of the smoke vocabulary
    seed = str(behaviour["student int8 (ONNX)"]["seed"])
    assert f"edge-sentiment check --seed {seed} --json" in (bundle / "MODEL_CARD.md").read_text()
    done = subprocess.run([sys.executable, "-m", "edge_sentiment", "check", "--bundle", str(bundle),
                           "--runtime", "onnx", "--json", "--seed", seed], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    cli = {t["name"]: t["failure_rate"] for t in json.loads(done.stdout)["tests"]}
    built = {t["name"]: t["failure_rate"] for t in behaviour["student int8 (ONNX)"]["tests"]}
    assert cli == built  # the CLI reproduces the card's table


@pytest.mark.slow
def test_smoke_rerun_with_new_distillation_keeps_the_teacher(smoke_bundle: Path,
                                                              tmp_path: Path) -> None:
    config = tmp_path / "smoke-lr.toml"
    text = (ROOT / "convert" / "configs" / "smoke.toml").read_text()
    assert "lr = 1e-3" in text
    config.write_text(text.replace("lr = 1e-3", "lr = 2e-3"))
    again = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "build", "--config", str(config),
                            "--data", "tests/fixtures/data", "--out", str(smoke_bundle)],
                           cwd=ROOT, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage teacher: cached" in again.stderr
    assert "distill.lr: 0.001 -> 0.002" in again.stderr
    assert "stage speed: the config changed" in again.stderr
    markers = list((smoke_bundle / "students").glob("*/distill.json"))
    assert markers
    assert all(json.loads(m.read_text())["inputs"]["distill.lr"] == 0.002 for m in markers)
    SentimentClassifier.load(smoke_bundle / "bundle", runtime="tflite")

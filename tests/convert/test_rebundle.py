"""``edge-sentiment-convert rebundle``: a new version of a built bundle from its trained student,
as a config's last stages say (identity anchor, static int8 ONNX, TFLite lengths), with no
retraining; the card is made again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.bundle import open_bundle
from edge_sentiment.evaluate import batch_consistency, read_labeled_tsv

ROOT = Path(__file__).parents[2]
PARENT_CONFIG = ROOT / "convert/configs/rebundle-smoke.toml"
WORD = "customer"  # a word of the smoke vocabulary
GROUPS = ("muslim", "christian", "jewish", "hindu", "gay", "straight", "black", "asian",
          "mexican", "indian")
FRAMES = ("The {} waiter was rude to us.", "My {} neighbour fixed the fence.",
          "A {} family ran the shop.")
ALL = {"identity_anchor": f'"{WORD}"', "onnx_quant": '"static"', "onnx_graph": '"fused"',
       "tflite_lengths": "[16, 32, 64]"}


@pytest.fixture(scope="module")
def parent(smoke_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle built as 2.0.0 was: one CNN student, identity words read as themselves, dynamic
    int8 ONNX, one TFLite length (the smoke teacher and soft labels reused from a copy)."""
    out = tmp_path_factory.mktemp("parent")
    shutil.copytree(smoke_bundle, out, dirs_exist_ok=True)
    # First with other TFLite lengths: the student folder then holds a TFLite file of the same
    # student name that the second build must not take for its own (a resumed build's calibrate
    # stage once wrote it into an eval bundle and failed, whenever the smoke build had chosen
    # this student).
    other = tmp_path_factory.mktemp("other") / "other.toml"
    other.write_text("tflite_lengths = [16, 32, 64]\n" + PARENT_CONFIG.read_text())
    for cfg in (other, PARENT_CONFIG):
        done = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "build",
                               "--config", str(cfg), "--data", "tests/fixtures/data", "--out",
                               str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    return out / "bundle"


def config(folder: Path, keys: dict[str, str]) -> Path:
    """The parent's config with ``keys`` (TOML values) added at the top."""
    path = folder / "rebundle.toml"
    lines = [f"{k} = {v}" for k, v in keys.items()]
    path.write_text("\n".join([*lines, PARENT_CONFIG.read_text()]))
    return path


def rebundle(bundle: Path, out: Path, cfg: Path,
             version: str = "0.0.2") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "rebundle",
                           "--bundle", str(bundle), "--version", version, "--config", str(cfg),
                           "--data", "tests/fixtures/data", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=False)


def group_scores(bundle: Path, runtime: str) -> dict[str, set[tuple[float, ...]]]:
    """Per frame, the distinct score rows over the group words."""
    clf = SentimentClassifier.load(bundle, runtime=runtime)
    return {frame: {tuple(p.scores.values()) for p in clf.classify([frame.format(g)
                                                                    for g in GROUPS])}
            for frame in FRAMES}


def dev_texts() -> list[str]:
    return [t for split in ("dev", "test")
            for t in read_labeled_tsv(ROOT / f"tests/fixtures/data/reviews/{split}.tsv")[0]]


def scores(bundle: Path, runtime: str, texts: list[str]) -> np.ndarray:
    clf = SentimentClassifier.load(bundle, runtime=runtime)
    return np.array([list(p.scores.values()) for p in clf.classify(texts)])


@pytest.mark.slow
def test_rebundle_makes_static_onnx_tflite_lengths_and_anchors_identity(parent: Path,
                                                                        tmp_path: Path) -> None:
    import onnx

    vocab = json.loads((parent / "tokenizer.json").read_text())["model"]["vocab"]
    assert WORD in vocab and all(g in vocab for g in ("muslim", "gay"))
    done = rebundle(parent, tmp_path / "a", config(tmp_path, ALL))
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = tmp_path / "a" / "bundle"
    new, old = open_bundle(bundle).manifest, open_bundle(parent).manifest
    assert (new.name, new.version, new.calibration) == (old.name, "0.0.2", old.calibration)
    assert new.tokenizer.sha256 != old.tokenizer.sha256
    onnx_file = next(a.file for a in new.artifacts if a.runtime == "onnx")
    ops = {n.op_type for n in onnx.load(str(bundle / onnx_file)).graph.node}
    assert "MatMulIntegerToFloat" in ops and "QLinearConv" not in ops, ops
    assert "DynamicQuantizeLinear" not in ops
    assert next(a for a in new.artifacts if a.runtime == "tflite").lengths == (16, 32, 64)
    texts = dev_texts()
    ref = scores(parent, "onnx", texts)
    for runtime in ("onnx", "tflite"):
        assert any(len(rows) > 1 for rows in group_scores(parent, runtime).values())
        assert all(len(rows) == 1 for rows in group_scores(bundle, runtime).values())
        # The same weights: scores within int8 noise of the parent's ONNX file on every text
        # (0.05 seen; a tiny model's scores sit near a third each, so labels flip on near-ties).
        worst = np.abs(scores(bundle, runtime, texts) - ref).max()
        assert worst < 0.1, (runtime, worst)
    onnx_clf = SentimentClassifier.load(bundle, runtime="onnx")
    assert batch_consistency(onnx_clf, texts, batch=16)["label_agreement"] == 1.0
    card = (bundle / "MODEL_CARD.md").read_text()
    for needle in ("# edge-sentiment-smoke 0.0.2", "No retraining", "static int8 activations",
                   "one signature per length [16, 32, 64]", f'as "{WORD}"',
                   "### How 0.0.1 was made", "baseline 0.0.1 int8 (TFLite)",
                   "met: student int8 ONNX labels the same alone and in batches on 100.00%"):
        assert needle in card, needle
    behaviour = json.loads((bundle / "behaviour.json").read_text())
    built = json.loads((parent / "behaviour.json").read_text())
    assert behaviour["teacher fp32 (ONNX)"] == built["teacher fp32 (ONNX)"]
    assert (tmp_path / "a" / "edge-sentiment-smoke-0.0.2.tar").is_file()


@pytest.mark.slow
def test_rebundle_keeps_the_model_files_when_only_the_anchor_is_asked(parent: Path,
                                                                      tmp_path: Path) -> None:
    done = rebundle(parent, tmp_path / "a", config(tmp_path, {"identity_anchor": f'"{WORD}"'}))
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = tmp_path / "a" / "bundle"
    new, old = open_bundle(bundle).manifest, open_bundle(parent).manifest
    assert [(a.file, a.sha256, a.lengths) for a in new.artifacts] == \
        [(a.file, a.sha256, a.lengths) for a in old.artifacts]
    for runtime in ("onnx", "tflite"):
        assert all(len(rows) == 1 for rows in group_scores(bundle, runtime).values())
    assert "unchanged" in (bundle / "MODEL_CARD.md").read_text()


@pytest.mark.slow
def test_rebundle_refuses_with_one_line(smoke_bundle: Path, parent: Path, tmp_path: Path) -> None:
    anchored = config(tmp_path, {"identity_anchor": f'"{WORD}"'})
    (tmp_path / "x").mkdir()
    outside = config(tmp_path / "x", {"identity_anchor": '"zzqqxx"'})
    (tmp_path / "y").mkdir()
    narrow = config(tmp_path / "y", ALL)
    narrow.write_text(narrow.read_text().replace("hidden = 64", "hidden = 32"))
    cases = [(smoke_bundle / "bundle", "0.0.2", anchored,
              "already reads identity words as 'identityterm'"),
             (parent, "0.0.1", anchored, "must be above the parent's 0.0.1"),
             (parent, "2.0", anchored, "is not a version like 2.0.1"),
             (parent, "0.0.2", outside, "is not a word of the student's vocabulary"),
             (parent, "0.0.2", narrow, "the config's student does not fit its weights"),
             (tmp_path / "nowhere", "0.0.2", anchored, "nowhere")]
    for i, (bundle, version, cfg, message) in enumerate(cases):
        done = rebundle(bundle, tmp_path / f"o{i}", cfg, version)
        assert done.returncode != 0 and message in done.stderr, (message, done.stderr[-2000:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edge-sentiment-convert: error:"), lines


@pytest.mark.slow
def test_rebundle_finetunes_on_own_logits_and_fits_calibration_again(parent: Path,
                                                                     tmp_path: Path) -> None:
    cfg = config(tmp_path, ALL | {"confidence_map": "true", "fit_to_targets": "true",
                                  "confidence_max_ece": "0.2", "calibrate_tflite": "true"})
    cfg.write_text(cfg.read_text() + "\n[finetune]\nepochs = 0.5\nlr = 1e-3\n"
                   "negation_target = [0.15, 0.55, 0.30]\nmax_words = 30\nrepeat = 2\n"
                   "typos = 40\npositive_target = [0.7, 0.22, 0.08]\nratings = 30\n")
    done = rebundle(parent, tmp_path / "a", cfg)
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = tmp_path / "a" / "bundle"
    new, old = open_bundle(bundle).manifest, open_bundle(parent).manifest
    assert new.calibration is not None and new.calibration != old.calibration
    assert len(new.calibration.confidence) == 2  # confidence_map: fitted and stored
    # new weights: the model files differ from the same export without [finetune] (which is
    # byte-for-byte reproducible)
    plain = rebundle(parent, tmp_path / "b", config(tmp_path / "a", ALL))
    assert plain.returncode == 0, plain.stderr[-3000:]
    shas = [{a.runtime: a.sha256 for a in open_bundle(b).manifest.artifacts}
            for b in (bundle, tmp_path / "b" / "bundle")]
    assert shas[0]["onnx"] != shas[1]["onnx"] and shas[0]["tflite"] != shas[1]["tflite"]
    for runtime in ("onnx", "tflite"):
        assert all(len(rows) == 1 for rows in group_scores(bundle, runtime).values())
    card = (bundle / "MODEL_CARD.md").read_text()
    for needle in ("Fine-tuned without the teacher", "fine-tuning (`[finetune]`): 0.5 epochs",
                   "student (fitted again after fine-tuning)",
                   "calibration: fitted again on pooled dev", "; confidence map slope ",
                   "its macro-F1 within max_dev_gap of the teacher's",
                   "40 misspelt copies of transfer texts",
                   "30 star ratings alone or after short texts it read as neutral",
                   "times with target [0.7, 0.22, 0.08] (convert/rules.py)",
                   "each source's ECE held at 20% or less where it can",
                   "fitted on the dev outputs of onnx, tflite-dynamic_tensorwise, "
                   "tflite-weight_only, each a source of its own"):
        assert needle in card, needle

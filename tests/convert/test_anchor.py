"""``edge-sentiment-convert anchor``: a new version of a built bundle whose tokenizer reads every
identity word as one word the student knows; the model files stay, the card is made again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sentiment import SentimentClassifier
from edge_sentiment.bundle import open_bundle
from edge_sentiment.errors import ConfigError

ROOT = Path(__file__).parents[2]
WORD = "customer"  # a word of the smoke vocabulary
GROUPS = ("muslim", "christian", "jewish", "hindu", "gay", "straight", "black", "asian",
          "mexican", "indian")
FRAMES = ("The {} waiter was rude to us.", "My {} neighbour fixed the fence.",
          "A {} family ran the shop.")


@pytest.fixture(scope="module")
def unblinded(smoke_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke build with identity words read as themselves in training, as 2.0.0 was made
    (the smoke teacher and soft labels reused from a copy of the smoke folder)."""
    out = tmp_path_factory.mktemp("unblinded")
    shutil.copytree(smoke_bundle, out, dirs_exist_ok=True)
    text = (ROOT / "convert/configs/smoke.toml").read_text()
    assert "blind_identity = true\n" in text
    lines = [x for x in text.replace("blind_identity = true", "blind_identity = false")
             .splitlines() if not x.startswith("blind_except")]
    config = out / "smoke-unblinded.toml"
    config.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "build", "--config",
                           str(config), "--data", "tests/fixtures/data", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "bundle"


def anchor(parent: Path, out: Path, version: str = "0.0.2",
           word: str = WORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "anchor", "--bundle",
                           str(parent), "--anchor", word, "--version", version, "--config",
                           "convert/configs/smoke.toml", "--data", "tests/fixtures/data",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def group_scores(bundle: Path, runtime: str) -> dict[str, set[tuple[float, ...]]]:
    """Per frame, the distinct score rows over the group words."""
    clf = SentimentClassifier.load(bundle, runtime=runtime)
    return {frame: {tuple(p.scores.values()) for p in clf.classify([frame.format(g)
                                                                    for g in GROUPS])}
            for frame in FRAMES}


@pytest.mark.slow
def test_anchor_reads_every_identity_word_as_one_and_keeps_the_model(unblinded: Path,
                                                                      tmp_path: Path) -> None:
    vocab = json.loads((unblinded / "tokenizer.json").read_text())["model"]["vocab"]
    assert WORD in vocab and all(g in vocab for g in ("muslim", "gay"))
    done = anchor(unblinded, tmp_path / "a")
    assert done.returncode == 0, done.stderr[-3000:]
    new, old = open_bundle(tmp_path / "a" / "bundle").manifest, open_bundle(unblinded).manifest
    assert (new.name, new.version) == (old.name, "0.0.2")
    assert [(a.file, a.sha256, a.lengths) for a in new.artifacts] == \
        [(a.file, a.sha256, a.lengths) for a in old.artifacts]
    assert new.calibration == old.calibration and new.tokenizer.sha256 != old.tokenizer.sha256
    for runtime in ("onnx", "tflite"):
        parent = group_scores(unblinded, runtime)
        assert any(len(rows) > 1 for rows in parent.values())  # the parent tells them apart
        assert all(len(rows) == 1 for rows in group_scores(tmp_path / "a" / "bundle",
                                                           runtime).values())
    card = (tmp_path / "a" / "bundle" / "MODEL_CARD.md").read_text()
    for needle in ("# edge-sentiment-smoke 0.0.2", f'as "{WORD}"', "### How 0.0.1 was made",
                   "baseline 0.0.1 int8 (ONNX)", "## Targets",
                   "met: student int8 ONNX labels the same alone and in batches on 100.00%"):
        assert needle in card, needle
    behaviour = json.loads((tmp_path / "a" / "bundle" / "behaviour.json").read_text())
    built = json.loads((unblinded / "behaviour.json").read_text())
    assert behaviour["teacher fp32 (ONNX)"] == built["teacher fp32 (ONNX)"]
    assert behaviour["student int8 (ONNX)"] != built["student int8 (ONNX)"]
    assert (tmp_path / "a" / "edge-sentiment-smoke-0.0.2.tar").is_file()


@pytest.mark.slow
def test_anchor_refuses_with_one_line(smoke_bundle: Path, unblinded: Path,
                                      tmp_path: Path) -> None:
    cases = [(smoke_bundle / "bundle", "0.0.2", WORD, "already reads identity words as "
              "'identityterm'"),
             (unblinded, "0.0.1", WORD, "must be above the parent's 0.0.1"),
             (unblinded, "2.0", WORD, "is not a version like 2.0.1"),
             (unblinded, "0.0.2", "zzqqxx", "is not a word of the student's vocabulary"),
             (unblinded, "0.0.2", "two words", "must be one word"),
             (tmp_path / "nowhere", "0.0.2", WORD, "nowhere")]
    for i, (parent, version, word, message) in enumerate(cases):
        done = anchor(parent, tmp_path / f"o{i}", version, word)
        assert done.returncode == ConfigError.exit_code or "nowhere" in message, done.stderr
        assert done.returncode != 0 and message in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edge-sentiment-convert: error:"), lines

"""Bad build input fails before any training starts, with a clear error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sentiment.errors import ConfigError
from edge_sentiment_convert.config import load_config
from edge_sentiment_convert.data import DataError, read_tsv

ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "convert/configs/smoke.toml"


def test_shipped_configs_are_valid() -> None:
    assert load_config(ROOT / "convert/configs/default.toml").students
    assert load_config(SMOKE).teacher.sources == {"reviews": 1.0}
    pruned = load_config(ROOT / "experiments/configs/pruned.toml")
    assert {s.gelu for s in pruned.students} == {"exact"} and pruned.max_dev_gap > 0
    for trial in sorted((ROOT / "experiments/configs").glob("*.toml")):
        assert load_config(trial).students, trial.name  # the trials stay runnable


@pytest.mark.parametrize("extra, msg", [
    ("colour = 1\n", "unknown keys"),
    ('gelu = "relu"\n', "gelu must be tanh or exact"),
    ('gap_sources = ["reviews", "imdb"]\n', r"gap_sources \['imdb'\] are not \[teacher\] sources"),
    ("[distill]\nalpha = 3.0\n", "alpha"),
    ("confidence_max_ece = -0.01\n", r"confidence_max_ece must be a number in \[0, 1\)"),
    ("confidence_max_ece = true\n", r"confidence_max_ece must be a number in \[0, 1\)"),
    ("calibrate_tflite = 1\n", "calibrate_tflite must be true or false"),
])
def test_bad_config(tmp_path: Path, extra: str, msg: str) -> None:
    text = SMOKE.read_text()
    if extra.startswith("gelu"):  # a student key
        text = text.replace('name = "L1-H64"\n', 'name = "L1-H64"\n' + extra, 1)
    elif extra.startswith("["):
        text = text.replace("[distill]\n", "[distill]\nalpha = 3.0\n", 1) if "alpha" in extra else text
    else:
        text = extra + text
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_config(path)


def test_identity_anchor_is_checked(tmp_path: Path) -> None:
    text = SMOKE.read_text()
    path = tmp_path / "c.toml"
    unblinded = text.replace('blind_identity = true\nblind_except = ["man", "guy"]\n',
                             "blind_identity = false\n")
    path.write_text('identity_anchor = "member"\n' + unblinded)
    assert load_config(path).identity_anchor == "member"
    for line, body, msg in [('identity_anchor = "two words"\n', unblinded, "one lower-case word"),
                            ('identity_anchor = "member"\n', text, "exclude each other")]:
        path.write_text(line + body)
        with pytest.raises(ConfigError, match=msg):
            load_config(path)


def test_onnx_graph_is_checked(tmp_path: Path) -> None:
    text = SMOKE.read_text()
    assert load_config(SMOKE).onnx_graph == "fused"
    path = tmp_path / "c.toml"
    for old, new, msg in [('onnx_graph = "fused"', 'onnx_graph = "cubic"',
                           "onnx_graph must be one of slices, conv, fused"),
                          ('onnx_quant = "static"', 'onnx_quant = "dynamic"',
                           'onnx_graph = "fused" needs onnx_quant = "static"')]:
        path.write_text(text.replace(old, new))
        with pytest.raises(ConfigError, match=msg):
            load_config(path)


@pytest.mark.parametrize("lines, msg", [
    ('blind_identity = true\nblind_except = ["phone"]\n', r"\['phone'\] are not blinded words"),
    ('blind_identity = false\nblind_except = ["man"]\n', "blind_except needs blind_identity"),
    ('blind_identity = true\nblind_except = "man"\n', "blind_except must be a list of words"),
])
def test_bad_blind_except(tmp_path: Path, lines: str, msg: str) -> None:
    path = tmp_path / "c.toml"
    text = SMOKE.read_text()
    assert 'blind_identity = true\nblind_except = ["man", "guy"]\n' in text
    path.write_text(text.replace('blind_identity = true\nblind_except = ["man", "guy"]\n', lines))
    with pytest.raises(ConfigError, match=msg):
        load_config(path)


def test_unknown_student_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SMOKE.read_text().replace('name = "L1-H64"', 'name = "L1-H64"\ndepth = 3'))
    with pytest.raises(ConfigError, match=r"students\]\]\[0\]: unknown keys \['depth'\]"):
        load_config(path)


@pytest.mark.parametrize("content, msg", [
    ("text\tlabel\ngood\tpositive\nno tab\n", ":3: no tab"),
    ("text\tlabel\ngood\tpositive\nbad\tangry\n", ":3: unknown label 'angry'"),
    ("text\tlabel\n", "split is empty"),
    ("words\tlabel\nx\tpositive\n", ":1: header"),
    ("text\tlabel\n\tpositive\n", ":2: empty text"),
])
def test_malformed_tsv_reports_file_and_line(tmp_path: Path, content: str, msg: str) -> None:
    path = tmp_path / "train.tsv"
    path.write_text(content)
    with pytest.raises(DataError, match=msg):
        read_tsv(path)


def test_text_with_tabs_splits_on_last_tab(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text('text\tlabel\n"quoted\tinner" tab\tneutral\n')
    (row,) = read_tsv(path)
    assert (row.text, row.label) == ('"quoted\tinner" tab', "neutral")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_sentiment_convert", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def test_cli_fails_fast_on_missing_data_and_bad_split(tmp_path: Path) -> None:
    r = _cli("build", "--config", str(SMOKE), "--data", str(tmp_path / "nope"), "--out",
             str(tmp_path / "o"))
    assert r.returncode == 2 and "data folder not found" in r.stderr
    data = tmp_path / "data"
    shutil.copytree(ROOT / "tests/fixtures/data", data)
    with (data / "reviews/train.tsv").open("a") as fh:
        fh.write("broken line without tab\n")
    r = _cli("build", "--config", str(SMOKE), "--data", str(data), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "train.tsv:242: no tab" in r.stderr
    assert not (tmp_path / "o/teacher").exists(), "nothing may be trained on bad input"
    (data / "reviews/dev.tsv").write_text("text\tlabel\n")
    r = _cli("build", "--config", str(SMOKE), "--data", str(data), "--out", str(tmp_path / "o2"))
    assert r.returncode == 2


def _with_student_line(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(SMOKE.read_text().replace('name = "L1-H64"', f'name = "L1-H64"\n{line}', 1))
    return path


def test_a_student_overrides_the_distillation_settings(tmp_path: Path) -> None:
    cfg = load_config(_with_student_line(tmp_path, "distill = { epochs = 3.0, alpha = 0.5 }"))
    mine = cfg.distill_for(cfg.students[0])
    assert (mine.epochs, mine.alpha, mine.features) == (3.0, 0.5, 0.0)
    assert cfg.distill_for(cfg.students[-1]).features == 1.0  # smoke.toml's CNN
    off = load_config(_with_student_line(tmp_path, "distill = { features = 0 }"))
    assert off.distill_for(off.students[0]).features == 0
    assert (mine.lr, mine.batch) == (cfg.distill.lr, cfg.distill.batch)
    assert cfg.distill.epochs == 2.0
    weighted = load_config(_with_student_line(
        tmp_path, "distill = { source_weights = { reviews = 2.0, unlabeled = 0 } }"))
    assert weighted.distill_for(weighted.students[0]).source_weights == {"reviews": 2.0,
                                                                         "unlabeled": 0}
    assert weighted.distill_for(weighted.students[1]).source_weights == {}


@pytest.mark.parametrize("line, msg", [
    ("distill = { unlabeled = 5 }", r"distill may only set .* not \['unlabeled'\]"),
    ("distill = { alpha = 1.5 }", r"distill alpha must be in \[0, 1\]"),
    ('distill = { lr = "fast" }', "distill values must be numbers > 0"),
    ("distill = 3", "distill must be a table"),
    ("distill = { features = -1.0 }", "distill features must be a number >= 0"),
    ('distill = { features = "yes" }', "distill features must be a number >= 0"),
    ("distill = { source_weights = { sst2 = 2.0 } }",
     r"distill source_weights: \['sst2'\] are not \[teacher\] sources"),
    ("distill = { source_weights = { reviews = -1 } }", "weights must be numbers >= 0"),
    ('distill = { source_weights = { reviews = "x" } }', "weights must be numbers >= 0"),
    ("distill = { source_weights = { reviews = 0, unlabeled = 0 } }",
     "every source in the transfer set weighs 0"),
    ("distill = { source_weights = 2 }", "source_weights must be a table"),
    ("distill = { seed = -1 }", "distill seed must be a whole number >= 0"),
    ("distill = { seed = 1.5 }", "distill seed must be a whole number >= 0"),
])
def test_bad_student_distillation_override(tmp_path: Path, line: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        load_config(_with_student_line(tmp_path, line))


@pytest.mark.parametrize("line, msg", [
    ('arch = "lstm"', "arch must be one of transformer, cnn, not 'lstm'"),
    ('arch = "cnn"', "heads, intermediate apply to transformers only"),
    ("kernel = 3", 'kernel is for arch = "cnn" only'),
    ("attention = 1", 'attention is for arch = "cnn" only'),
])
def test_bad_student_architecture(tmp_path: Path, line: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        load_config(_with_student_line(tmp_path, line))


def _with_cnn(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(SMOKE.read_text() + f'\n[[students]]\nname = "C"\narch = "cnn"\nlayers = 2\n'
                                        f"hidden = 32\n{extra}")
    return path


@pytest.mark.parametrize("extra, msg", [
    ("", "a cnn needs emb_rank > 0"),
    ("emb_rank = 8\nkernel = 4\n", "kernel must be an odd number"),
    ('emb_rank = 8\ngelu = "exact"\n', "gelu apply to transformers only"),
    ("emb_rank = 8\nheads = 4\n", "heads apply to transformers only"),
    ("emb_rank = 8\nattention = -1\n", "attention must be a whole number >= 0"),
    ("emb_rank = 8\nattention = 1\nheads = 5\nintermediate = 64\n",
     "attention layers need heads > 0 dividing hidden"),
    ("emb_rank = 8\nattention = 1\nheads = 4\n", "attention layers need heads > 0 dividing hidden "
     "and intermediate > 0"),
])
def test_bad_cnn_student(tmp_path: Path, extra: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        load_config(_with_cnn(tmp_path, extra))


def test_a_transformer_needs_heads_and_intermediate(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SMOKE.read_text().replace("heads = 2\n", "", 1))
    with pytest.raises(ConfigError, match="a transformer needs heads and intermediate > 0"):
        load_config(path)


def test_a_cnn_student_parses(tmp_path: Path) -> None:
    cfg = load_config(_with_cnn(tmp_path, "emb_rank = 8\nkernel = 5\n"))
    cnn = cfg.students[-1]
    assert (cnn.arch, cnn.kernel, cnn.emb_rank, cnn.heads) == ("cnn", 5, 8, 0)
    attn = load_config(_with_cnn(tmp_path, "emb_rank = 8\nattention = 1\nheads = 4\n"
                                           "intermediate = 64\ndistill = { seed = 7 }\n"))
    mine = attn.students[-1]
    assert (mine.attention, mine.heads, mine.intermediate) == (1, 4, 64)
    assert (attn.distill_for(mine).seed, attn.distill.seed) == (7, 0)


def test_augmentation_settings(tmp_path: Path) -> None:
    assert "augment = 1\n" in SMOKE.read_text()
    text = SMOKE.read_text().replace("augment = 1\n", "augment = 2\n", 1)
    path = tmp_path / "c.toml"
    path.write_text(text.replace('name = "L1-H64"', 'name = "L1-H64"\ndistill = { augment = 0 }'))
    cfg = load_config(path)
    assert [cfg.distill_for(s).augment for s in cfg.students] == [0, 2, 2]
    path.write_text(text.replace('name = "L1-H64"', 'name = "L1-H64"\ndistill = { augment = 3 }'))
    with pytest.raises(ConfigError, match=r"augment must be a whole number from 0 to .* \(2\)"):
        load_config(path)
    path.write_text(text.replace("augment = 2", "augment = 1.5"))
    with pytest.raises(ConfigError, match=r"\[distill\] augment must be a whole number"):
        load_config(path)


def test_negative_feature_weight_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SMOKE.read_text().replace("[distill]\n", "[distill]\nfeatures = -0.5\n", 1))
    with pytest.raises(ConfigError, match=r"\[distill\] features must be a number >= 0"):
        load_config(path)


def test_transfer_weights_count_unlabeled_text_only_when_the_build_reads_some(
        tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SMOKE.read_text().replace("unlabeled = 40", "unlabeled = 0", 1)
                    .replace('name = "L1-H64"', 'name = "L1-H64"\n'
                             "distill = { source_weights = { reviews = 0 } }", 1))
    with pytest.raises(ConfigError, match="every source in the transfer set weighs 0"):
        load_config(path)


@pytest.mark.parametrize("value", ["[0.5, 0.5]", "[0.5, 0.6, -0.1]", "[0.2, 0.2, 0.2]", '"yes"'])
def test_bad_negation_target(tmp_path: Path, value: str) -> None:
    path = tmp_path / "c.toml"
    text = SMOKE.read_text()
    assert "negation_target = [0.15, 0.55, 0.30]\n" in text
    path.write_text(text.replace("negation_target = [0.15, 0.55, 0.30]\n",
                                 f"negation_target = {value}\n"))
    with pytest.raises(ConfigError, match="negation_target must be empty or three probabilities"):
        load_config(path)

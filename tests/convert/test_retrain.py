"""Closing the loop, smoke-sized: the fleet's exported samples as one more source (--data given
twice), a retrained candidate, and the gate against the current release, passing or failing
for its stated reason; a bar set out of reach makes it fail on purpose. A passed candidate is
signed and published to the canary channel; a retrain ``--from`` an earlier build reuses its
teacher, and ``--track mlflow`` logs the build to a local store."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from edge_sentiment.errors import ConfigError
from edge_sentiment.fleet.ops import keygen
from edge_sentiment.fleet.samples import export
from edge_sentiment_convert.data import DataError, merge_roots, read_tsv
from tests.edge_sentiment.agent.conftest import PREFIX, Broker, Watcher

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests/fixtures/data"
TINY = ROOT / "tests/fixtures/tiny_bundle"


def _fleet(out: Path) -> Path:
    rows = [{"text": e.text, "label": e.label}
            for split in ("dev", "test") for e in read_tsv(DATA / "reviews" / f"{split}.tsv",
                                                          labeled=True, source="fleet")]
    rows += [{"text": "arrived on a tuesday in a box", "label": None}]
    export(rows, out)
    return out


def test_data_folders_merge_and_a_source_in_two_is_refused(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path / "fleet-data")
    merged = merge_roots([DATA, fleet], tmp_path / "merged")
    assert {p.name for p in merged.iterdir()} == {"reviews", "sst2", "fleet", "unlabeled"}
    texts = read_tsv(merged / "unlabeled" / "unlabeled.tsv", labeled=False, source="u")
    assert "arrived on a tuesday in a box" in {e.text for e in texts}
    assert len(texts) == len(read_tsv(DATA / "unlabeled/unlabeled.tsv", labeled=False,
                                      source="u")) + 1
    with pytest.raises(DataError, match="'reviews' is in more than one"):
        merge_roots([DATA, DATA], tmp_path / "twice")


def _gate(candidate: Path, fleet: Path, *extra: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "gate", "--current",
                           str(TINY), "--candidate", str(candidate), "--data", str(DATA),
                           "--fleet", str(fleet / "fleet"), "--json", *extra],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def _build(config: Path | str, out: Path, fleet: Path, *extra: str) -> None:
    built = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "build", "--config",
                            str(config), "--data", str(DATA), "--data", str(fleet), "--out",
                            str(out), *extra], cwd=ROOT, capture_output=True, text=True,
                           check=False)
    assert built.returncode == 0, built.stderr[-3000:]


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the retrain build's folder, the fleet export it used)."""
    tmp = tmp_path_factory.mktemp("retrain")
    fleet = _fleet(tmp / "fleet-data")
    _build("convert/configs/retrain-smoke.toml", tmp / "retrain", fleet)
    return tmp / "retrain", fleet


@pytest.mark.slow
def test_a_retrained_candidate_is_gated(retrained: tuple[Path, Path]) -> None:
    out, fleet = retrained
    candidate = out / "bundle"
    code, verdict = _gate(candidate, fleet)
    assert (code == 0) == verdict["passed"] and verdict["candidate"] == "0.0.2"
    kinds = {r["kind"] for r in verdict["rows"]}  # type: ignore[attr-defined]
    assert kinds == {"frozen", "fleet", "suite"}
    assert verdict["passed"] or verdict["reasons"]
    code, verdict = _gate(candidate, fleet, "--min-fleet-gain", "1000")
    assert code == 1 and any(str(r).startswith("fleet held-out")
                             for r in verdict["reasons"])  # type: ignore[attr-defined]
    assert "## Gate" in (candidate / "MODEL_CARD.md").read_text()


LENIENT = ("--min-fleet-gain", "-1000", "--frozen-tolerance", "1000", "--suite-tolerance", "1000")


@pytest.mark.slow
def test_a_passed_candidate_is_signed_and_published_to_canary(retrained: tuple[Path, Path],
                                                              tmp_path: Path, broker: Broker) -> None:
    out, fleet = retrained
    key, _ = keygen(tmp_path / "keys", "release")
    sign = ("--sign-key", str(key), "--release-version", "0.0.3", "--release-out")
    code, verdict = _gate(out / "bundle", fleet, "--min-fleet-gain", "1000", *sign,
                          str(tmp_path / "refused"))
    assert code == 1 and "release" not in verdict and not (tmp_path / "refused").exists()
    watcher = Watcher(broker)
    code, verdict = _gate(out / "bundle", fleet, *LENIENT, *sign, str(tmp_path / "rel"),
                          "--publish", broker.url)
    assert code == 0 and verdict["release"] == str(tmp_path / "rel")
    signed = json.loads((tmp_path / "rel" / "manifest.json").read_text())["signed"]
    assert (signed["version"], signed["channel"]) == ("0.0.3", "canary")
    body = watcher.wait_for(lambda t, b: t == f"{PREFIX}/updates/canary/manifest")
    assert body["signed"]["version"] == "0.0.3"
    watcher.client.disconnect()


def test_release_options_are_checked_before_any_scoring(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "edge_sentiment_convert", "gate", "--current",
                           str(TINY), "--candidate", str(TINY), "--data", str(DATA), "--fleet",
                           str(tmp_path), "--sign-key", "k.key"], capture_output=True,
                          text=True, check=False, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith("--sign-key needs --release-version and --release-out")


@pytest.mark.slow
def test_a_retrain_from_an_earlier_build_reuses_its_teacher_and_is_tracked(
        retrained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    earlier, fleet = retrained
    config = tmp_path / "as-is.toml"
    config.write_text((ROOT / "convert/configs/retrain-smoke.toml").read_text()
                      .replace('reuse = "continue"', 'reuse = "as_is"'))
    store = tmp_path / "mlruns"
    _build(config, tmp_path / "again", fleet, "--from", str(earlier), "--track", "mlflow",
           "--tracking-uri", f"file:{store}")
    teacher = "teacher/teacher.pt"
    assert (tmp_path / "again" / teacher).read_bytes() == (earlier / teacher).read_bytes()
    marker = json.loads((tmp_path / "again/stages/teacher.json").read_text())
    assert marker["result"]["examples"] == 0 and "teacher.from" in marker["inputs"]

    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # what the build set for its own run
    mlflow.set_tracking_uri(f"file:{store}")
    runs = mlflow.search_runs(experiment_names=["edge-sentiment-retrain-smoke"],
                              output_format="list")
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    assert metrics["stage.teacher.seconds"] >= 0
    assert 0 <= metrics["student_int8_onnx.fleet/dev.macro_f1"] <= 1
    assert "student_int8_onnx.behaviour.negated_negative" in metrics
    assert runs[0].data.params["teacher.reuse"] == "as_is"
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)}
    assert {"MODEL_CARD.md", "bundle", "confusion", "config"} <= names


@pytest.mark.parametrize("setup, error", [
    ("never", "this config does not reuse a teacher"),
    ("bundle", "a bundle carries no teacher"),
    ("empty", "no fine-tuned teacher"),
    ("emoji", "that teacher was trained with [teacher] emoji = false"),
])
def test_from_is_checked_before_any_work(tmp_path: Path, setup: str, error: str) -> None:
    from edge_sentiment_convert.config import load_config
    from edge_sentiment_convert.stages.teacher import earlier_teacher

    cfg = load_config(ROOT / "convert/configs/retrain-smoke.toml")
    earlier = tmp_path / "earlier"
    (earlier / "teacher").mkdir(parents=True)
    if setup == "never":
        cfg = replace(cfg, teacher=replace(cfg.teacher, reuse="never"))
    if setup == "bundle":
        earlier = TINY
    if setup == "emoji":
        (earlier / "teacher/teacher.pt").write_bytes(b"x")
        (earlier / "stages").mkdir()
        (earlier / "stages/teacher.json").write_text('{"inputs": {}}')
    with pytest.raises(ConfigError) as info:
        earlier_teacher(earlier, cfg)
    assert error in str(info.value)


def test_tracked_names_are_what_mlflow_takes() -> None:
    from edge_sentiment_convert.track import flatten, key

    assert key("speed.teacher int8 (ONNX).p50_ms") == "speed.teacher_int8_onnx.p50_ms"
    assert key("student-C2.fleet/dev.macro_f1") == "student-c2.fleet/dev.macro_f1"
    assert flatten({"a": {"b": 1}, "students": [{"name": "s1", "layers": 2}], "c": [1, 2]}) == \
        {"a.b": 1, "students.s1.name": "s1", "students.s1.layers": 2, "c": [1, 2]}

"""Stage inputs: a rerun with a changed config redoes exactly the stages the change touches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from edge_sentiment_convert.build import Build
from edge_sentiment_convert.config import load_config
from edge_sentiment_convert.stages import (
    FINAL_STAGES,
    LATE_KEYS,
    TEACHER_STAGES,
    changed,
    stage_inputs,
)

ROOT = Path(__file__).parents[2]
SMOKE = ROOT / "convert" / "configs" / "smoke.toml"


def _stages(cfg: object) -> list[str]:
    return [*TEACHER_STAGES, *(f"student-{s.name}" for s in cfg.students), *FINAL_STAGES]  # type: ignore[attr-defined]


def test_a_new_distillation_reruns_students_and_after_but_keeps_the_teacher() -> None:
    cfg = load_config(SMOKE)
    other = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, epochs=7.0))
    moved = [n for n in _stages(cfg) if changed(stage_inputs(cfg, n), stage_inputs(other, n))]
    assert moved == [n for n in _stages(cfg) if n not in TEACHER_STAGES]
    student = f"student-{cfg.students[0].name}"
    assert changed(stage_inputs(cfg, student), stage_inputs(other, student)) == [
        f"distill.epochs: {cfg.distill.epochs!r} -> 7.0"]


def test_a_new_teacher_reruns_everything_and_a_new_vocab_keeps_the_teacher() -> None:
    cfg = load_config(SMOKE)
    teacher = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, lr=1e-3))
    assert all(changed(stage_inputs(cfg, n), stage_inputs(teacher, n)) for n in _stages(cfg))
    vocab = dataclasses.replace(cfg, vocab=dataclasses.replace(cfg.vocab, max_size=99))
    moved = {n for n in _stages(cfg) if changed(stage_inputs(cfg, n), stage_inputs(vocab, n))}
    assert "teacher" not in moved and "teacher_dev" not in moved
    assert {"vocab", "tflite", f"student-{cfg.students[0].name}"} <= moved


def test_another_candidate_trains_only_itself_but_the_choice_is_redone() -> None:
    cfg = load_config(SMOKE)
    extra = dataclasses.replace(cfg.students[0], name="another", layers=2)
    more = dataclasses.replace(cfg, students=(*cfg.students, extra))
    first = f"student-{cfg.students[0].name}"
    assert not changed(stage_inputs(cfg, first), stage_inputs(more, first))
    assert changed(stage_inputs(cfg, "tflite"), stage_inputs(more, "tflite"))


def test_inputs_survive_a_json_round_trip_unchanged() -> None:
    cfg = load_config(SMOKE)
    for name in _stages(cfg):
        inputs = stage_inputs(cfg, name)
        assert not changed(json.loads(json.dumps(inputs)), inputs), name


def test_stage_reuses_a_result_only_for_the_same_inputs(tmp_path: Path) -> None:
    cfg = load_config(SMOKE)
    calls: list[str] = []

    def run(cfg_: object, value: str) -> object:
        return Build(cfg_, SMOKE, tmp_path, tmp_path).stage(  # type: ignore[arg-type]
            "teacher", lambda: calls.append(value) or value)

    assert run(cfg, "first") == "first"
    assert run(cfg, "second") == "first"  # cached
    changed_cfg = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, epochs=3.0))
    assert run(changed_cfg, "third") == "third"  # rerun: teacher.epochs changed
    assert calls == ["first", "third"]
    marker = json.loads((tmp_path / "stages" / "teacher.json").read_text())
    assert marker["inputs"]["teacher.epochs"] == 3.0
    del marker["inputs"]  # a marker written before inputs were recorded is still reused
    (tmp_path / "stages" / "teacher.json").write_text(json.dumps(marker))
    assert run(cfg, "fourth") == "third"


def test_keys_added_later_leave_older_transformer_markers_valid() -> None:
    cfg = load_config(SMOKE)
    student = f"student-{cfg.students[0].name}"
    inputs = stage_inputs(cfg, student)
    assert "student.arch" not in inputs and "student.kernel" not in inputs
    cnn = dataclasses.replace(cfg.students[0], name="c", arch="cnn", heads=0, intermediate=0)
    with_cnn = dataclasses.replace(cfg, students=(*cfg.students, cnn))
    assert stage_inputs(with_cnn, "student-c")["student.arch"] == "cnn"
    assert changed(stage_inputs(cfg, "speed"), stage_inputs(with_cnn, "speed"))


def test_more_augmentation_relabels_but_keeps_a_student_that_opts_out() -> None:
    cfg = load_config(SMOKE)
    first, second = cfg.students[0], cfg.students[1]
    out_opt = dataclasses.replace(first, distill={"augment": 0})
    base = dataclasses.replace(cfg, students=(out_opt, second),
                               distill=dataclasses.replace(cfg.distill, augment=0))
    more = dataclasses.replace(base, distill=dataclasses.replace(cfg.distill, augment=1))
    moved = {n for n in _stages(base) if changed(stage_inputs(base, n), stage_inputs(more, n))}
    assert {"soft_labels", f"student-{second.name}", "tflite"} <= moved
    assert not moved & {"teacher", "vocab", f"student-{first.name}"}
    assert "distill.augment" not in stage_inputs(base, "soft_labels")
    assert stage_inputs(more, "soft_labels")["distill.augment"] == 1


def test_the_card_quotes_the_config_the_build_started_from(tmp_path: Path) -> None:
    config = tmp_path / "my.toml"
    config.write_text(SMOKE.read_text())
    build = Build(load_config(config), config, tmp_path, tmp_path)
    config.write_text(SMOKE.read_text().replace('version = ', 'version = "9.9.9"\n# was '))
    assert build.config_text == SMOKE.read_text()


def test_transfer_weights_retrain_only_that_student_on_the_same_soft_labels() -> None:
    cfg = load_config(SMOKE)
    first = cfg.students[0]
    weighted = dataclasses.replace(first, distill={"source_weights": {"reviews": 2.0}})
    other = dataclasses.replace(cfg, students=(weighted, *cfg.students[1:]))
    moved = {n for n in _stages(cfg) if changed(stage_inputs(cfg, n), stage_inputs(other, n))}
    assert moved == {f"student-{first.name}", *FINAL_STAGES}
    assert "distill.source_weights" not in stage_inputs(cfg, f"student-{first.name}")


def test_every_config_field_belongs_to_a_stage() -> None:
    """A field added without ``at(...)`` (so without the stages that read it) fails here, instead
    of silently escaping cache invalidation."""
    from dataclasses import fields, is_dataclass

    from edge_sentiment_convert.config import (
        STAGES,
        BuildConfig,
        DistillCfg,
        StudentCfg,
        TeacherCfg,
        VocabCfg,
    )
    from edge_sentiment_convert.stages import AFTER, stage_inputs

    cfg = load_config(SMOKE)
    seen: set[str] = set()
    for name in ("teacher", "validate", "soft_labels", "vocab", "teacher_onnx", "teacher_dev",
                 *[f"student-{s.name}" for s in cfg.students], "evaluate"):
        seen |= {k.split(".")[-1] for k in stage_inputs(cfg, name)}
    for cls in (BuildConfig, TeacherCfg, DistillCfg, VocabCfg, StudentCfg):
        for f in fields(cls):
            stages = f.metadata.get("stages")
            assert stages and set(stages) <= set(STAGES), f"{cls.__name__}.{f.name}: no stage"
            assert set(stages) - {"finish", "table"} <= set(AFTER), (cls.__name__, f.name)
            if "table" in stages:
                # sub-tables; [finetune] is read by rebundle only, never by a build stage
                assert f.name in ("teacher", "students", "distill", "vocab", "finetune")
            elif "finish" not in stages:  # a cached stage reads it: it is among their inputs
                assert f.name in seen or f.name in LATE_KEYS, f"{cls.__name__}.{f.name}"
    assert all(is_dataclass(t) for t in (TeacherCfg, DistillCfg, VocabCfg, StudentCfg))


def test_changed_data_reruns_a_stage_and_older_markers_stay_valid(tmp_path: Path) -> None:
    cfg = load_config(SMOKE)
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "reviews").mkdir(parents=True)
    train = data / "reviews" / "train.tsv"
    train.write_text("text\tlabel\ngreat\tpositive\n")
    calls: list[str] = []

    def run(value: str) -> object:
        return Build(cfg, SMOKE, data, out).stage("teacher", lambda: calls.append(value) or value)

    assert run("first") == "first"
    (data / "README.md").write_text("not data the build reads")
    assert run("second") == "first"  # cached: the same data
    train.write_text("text\tlabel\ngreat\tpositive\nawful\tnegative\n")
    assert run("third") == "third"  # a changed split reruns the stage
    marker_path = out / "stages" / "teacher.json"
    marker = json.loads(marker_path.read_text())
    assert len(marker["inputs"]["data"]) == 16
    del marker["inputs"]["data"]  # written before the digest existed: still reused
    marker_path.write_text(json.dumps(marker))
    assert run("fourth") == "third"
    assert calls == ["first", "third"]

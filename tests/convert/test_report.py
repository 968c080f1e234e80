"""The model card's target checks: each verdict matches the figure it prints."""

from __future__ import annotations

from typing import Any

from convert import report


def _split(f1: float, acc: float | None = None) -> dict[str, Any]:
    return {"macro_f1": f1, "accuracy": f1 if acc is None else acc, "binary": acc is not None}


def _ctx(student_sst2: float, student_sst5: float) -> dict[str, Any]:
    teacher = {"sst5_3class/test": _split(0.634), "sst2/dev": _split(0.9, acc=0.905)}
    student = {"sst5_3class/test": _split(student_sst5), "sst2/dev": _split(0.8, acc=student_sst2)}
    speed = {"student int8 (ONNX)": {"p50_ms": 0.5}, "teacher fp32 (ONNX)": {"p50_ms": 5.5},
             "teacher int8 (ONNX)": {"p50_ms": 1.5}}
    return {"evals": {"teacher fp32 (ONNX)": teacher, "student int8 (ONNX)": student,
                      "student int8 (TFLite)": student},
            "sizes": {"student int8 ONNX": 5e6, "student int8 TFLite": 9e6},
            "speed": speed, "agreement": {"all_test": 0.9928}, "build_minutes": 45.0}


def test_a_figure_just_under_its_target_is_printed_as_under_it() -> None:
    verdicts = dict(report.targets(_ctx(student_sst2=767 / 872, student_sst5=0.614)))
    assert verdicts["student int8 (ONNX) SST-2 dev accuracy 87.96 >= 88.0"] is False
    assert verdicts["student int8 (ONNX) within 2.0 macro-F1 of the teacher on "
                    "sst5_3class/test: +2.00 points behind"] is True
    assert verdicts["int8 TFLite 9.00 MB <= 8 MB"] is False
    assert verdicts["student int8 ONNX 11.0x faster than teacher fp32 (ONNX) (>= 10x)"] is True
    assert verdicts["student int8 ONNX 3.0x faster than teacher int8 (ONNX) (>= 4x)"] is False
    assert verdicts["ONNX int8 and TFLite int8 agree on 99.28% >= 99% of test predictions"]


def test_one_more_sentence_meets_the_sst2_target() -> None:
    verdicts = dict(report.targets(_ctx(student_sst2=768 / 872, student_sst5=0.60)))
    assert verdicts["student int8 (ONNX) SST-2 dev accuracy 88.07 >= 88.0"] is True
    assert verdicts["student int8 (ONNX) within 2.0 macro-F1 of the teacher on "
                    "sst5_3class/test: +3.40 points behind"] is False


def test_speed_on_real_texts_gets_its_own_verdicts_and_table() -> None:
    ctx = _ctx(student_sst2=0.9, student_sst5=0.62)
    real = {k: {"p50_ms": v["p50_ms"] * f, "p95_ms": 1.0, "mean_tokens": 30.5}
            for (k, v), f in zip(ctx["speed"].items(), (1.0, 2.0, 3.0))}
    ctx["speed_real"] = ("amazon_marc_en/dev", real)
    verdicts = dict(report.targets(ctx))
    assert verdicts["student int8 ONNX 22.0x faster than teacher fp32 (ONNX) (>= 10x) on "
                    "amazon_marc_en/dev"] is True
    assert verdicts["student int8 ONNX 9.0x faster than teacher int8 (ONNX) (>= 4x) on "
                    "amazon_marc_en/dev"] is True
    assert verdicts["student int8 ONNX 3.0x faster than teacher int8 (ONNX) (>= 4x)"] is False
    table = "\n".join(report._real_speed(ctx))
    assert "`amazon_marc_en/dev`" in table and "30.5 student tokens" in table
    assert report._real_speed(_ctx(0.9, 0.62)) == []

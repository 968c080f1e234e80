"""The model card's targets come from the config, and each verdict matches its figure."""

from __future__ import annotations

from typing import Any

from edge_sentiment_convert import card


def _split(f1: float, acc: float | None = None, neutral: float = 0.5,
           ece: float = 0.03) -> dict[str, Any]:
    return {"macro_f1": f1, "accuracy": f1 if acc is None else acc, "binary": acc is not None,
            "per_class": {"neutral": {"recall": neutral}}, "ece": ece}


def _test(name: str, n: int, failures: int) -> dict[str, Any]:
    return {"name": name, "n": n, "failures": failures, "failure_rate": failures / n,
            "capability": "c", "kind": "INV"}


def _ctx(targets: dict[str, float], student_f1: float = 0.60, neutral: float = 0.5
         ) -> dict[str, Any]:
    teacher = {"sst5_3class/dev": _split(0.61), "sst2/dev": _split(0.9, acc=0.905)}
    student = {"sst5_3class/dev": _split(student_f1, neutral=neutral),
               "sst2/dev": _split(0.8, acc=777 / 872)}
    speed = {"student int8 (ONNX)": {"p50_ms": 0.5, "p95_ms": 0.6},
             "baseline 1.4.0 int8 (ONNX)": {"p50_ms": 0.3, "p95_ms": 0.4}}
    behaviour = {"student int8 (ONNX)": {"tests": [
        _test("identity_race", 100, 2), _test("identity_religion", 100, 5),
        _test("negated_negative", 200, 40)]}}
    return {"evals": {"teacher fp32 (ONNX)": teacher, "student int8 (ONNX)": student,
                      "student int8 (TFLite)": student},
            "sizes": {"student int8 ONNX": 5e6, "student int8 TFLite": 8.004e6},
            "speed": speed, "agreement": {"all_test": 0.9928}, "build_minutes": 45.0,
            "gap_sources": ["sst5_3class", "sst2"], "targets": targets, "behaviour": behaviour}


def test_no_targets_no_verdicts() -> None:
    assert card.targets(_ctx({})) == []


def test_each_target_is_checked_against_its_printed_figure() -> None:
    verdicts = dict(card.targets(_ctx({
        "max_artifact_mb": 8.0, "max_dev_gap": 1.0, "min_neutral_recall": 0.45,
        "min_sst2_dev": 89.0, "max_dev_ece": 0.05, "max_baseline_p50_ratio": 2.0,
        "fail_identity": 0.03, "fail_negated_negative": 0.20, "min_agreement": 0.99})))
    assert verdicts["student int8 TFLite 8.00 MB <= 8 MB"] is True  # 8.004 prints as 8.00
    assert verdicts["student int8 (ONNX) within 1.0 macro-F1 of the teacher on sst5_3class/dev: "
                    "+1.00 behind"] is True
    assert verdicts["student int8 (ONNX) neutral recall on sst5_3class/dev 50.0% >= 45%"] is True
    assert verdicts["student int8 (ONNX) SST-2 dev accuracy 89.11 >= 89.0"] is True
    assert verdicts["student int8 ONNX p50 1.67x that of baseline 1.4.0 int8 (ONNX) on dev "
                    "texts <= 2.0x"] is True
    assert verdicts["student int8 (ONNX) identity failure rate 3.5% <= 3%"] is False
    assert verdicts["student int8 (ONNX) negated_negative failure rate 20.0% <= 20%"] is True
    assert verdicts["ONNX and TFLite agree on 99.28% of test predictions >= 99%"] is True


def test_a_figure_just_past_its_target_is_missed() -> None:
    verdicts = dict(card.targets(_ctx({"max_dev_gap": 1.0, "min_neutral_recall": 0.45},
                                      student_f1=0.5999, neutral=0.449)))
    assert verdicts["student int8 (ONNX) within 1.0 macro-F1 of the teacher on sst5_3class/dev: "
                    "+1.01 behind"] is False
    assert verdicts["student int8 (ONNX) neutral recall on sst5_3class/dev 44.9% >= 45%"] is False


def test_card_leads_with_user_figures() -> None:
    ctx = {**_ctx({"max_artifact_mb": 8.0}), "name": "m", "version": "1.0.0", "pareto": [],
           "command": "edge-sentiment-convert build ...", "config_name": "c.toml",
           "config_text": "x = 1", "machine": "x86_64", "stage_seconds": {}}
    text = card.card(ctx)
    assert text.index("Scores per split") < text.index("Behaviour") < text.index("How it was made")
    assert text.index("How it was made") < text.index("Targets")
    assert "| identity_religion | c | INV | 100 | 5.0 |" in text


def test_batch_consistency_is_a_target_and_a_card_section() -> None:
    batch = {"n": 8000, "batch": 256, "label_agreement": 0.99875, "changed": 10,
             "max_score_diff": 0.0178}
    ctx = {**_ctx({"min_batch_agreement": 0.999}), "consistency": batch}
    verdicts = dict(card.targets(ctx))
    assert verdicts["student int8 ONNX labels the same alone and in batches on 99.88% of dev "
                    "texts >= 99.9%"] is False
    ctx["consistency"] = {**batch, "label_agreement": 1.0, "changed": 0, "max_score_diff": 0.0}
    assert dict(card.targets(ctx))["student int8 ONNX labels the same alone and in batches on "
                                   "100.00% of dev texts >= 99.9%"] is True
    text = card.card({**ctx, "name": "m", "version": "1.0.0", "pareto": [], "onnx_quant": "static",
                      "command": "c", "config_name": "c.toml", "config_text": "x = 1",
                      "machine": "x86_64", "stage_seconds": {}})
    assert "## Alone and in batches" in text
    assert "(static activation scales) on all 8000 dev texts" in text


def test_the_card_says_when_identity_words_are_blinded_after_training() -> None:
    base = {**_ctx({}), "name": "m", "version": "1.0.0", "pareto": [], "command": "c",
            "config_name": "c.toml", "config_text": "x = 1", "machine": "x86_64",
            "stage_seconds": {}}
    assert "blinded after training" not in card.card(base)
    text = card.card({**base, "identity_anchor": "member", "identity_words": 260})
    assert 'each of 260 religion, ethnicity, nationality, sexuality and gender words' in text
    assert 'as "member"' in text

"""Choices the build makes: the two-way loss for binary sources, binary-source detection, and
the TFLite quantization pick, the student pick."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from edge_sentiment_convert.choose import Candidate, choose_student, pick_tflite_mode
from edge_sentiment_convert.data import binary_sources
from edge_sentiment_convert.teacher import hard_loss

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"


def test_binary_rows_never_push_on_neutral() -> None:
    logits = torch.tensor([[1.0, 5.0, 0.0], [1.0, 5.0, 0.0]], requires_grad=True)
    loss = hard_loss(logits, torch.tensor([0, 0]), torch.tensor([True, False]))
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[0, 1].item() == 0.0  # binary row: neutral logit untouched
    assert logits.grad[1, 1].item() > 0.0  # 3-class row: neutral pushed down
    two_way = torch.nn.functional.cross_entropy(torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    three_way = torch.nn.functional.cross_entropy(torch.tensor([[1.0, 5.0, 0.0]]),
                                                  torch.tensor([0]))
    assert loss.item() == pytest.approx((two_way.item() + three_way.item()) / 2, rel=1e-5)


def test_binary_sources_are_the_ones_without_neutral_train_rows(tmp_path: Path) -> None:
    for source, labels in {"three": ["negative", "neutral", "positive"],
                           "two": ["negative", "positive"]}.items():
        (tmp_path / source).mkdir()
        rows = "".join(f"text {i}\t{label}\n" for i, label in enumerate(labels))
        (tmp_path / source / "train.tsv").write_text("text\tlabel\n" + rows)
    assert binary_sources(tmp_path, {"three": 1.0, "two": 1.0}) == {"two"}
    assert binary_sources(DATA, {"reviews": 1.0}) == frozenset()


@pytest.mark.parametrize("agreement, expected", [
    ({"dynamic_tensorwise": 0.9923, "weight_only": 0.9928}, "dynamic_tensorwise"),
    ({"dynamic_tensorwise": 0.9851, "weight_only": 0.9858}, "weight_only"),
    ({"dynamic_tensorwise": 0.985, "weight_only": 0.995}, "weight_only"),
    ({}, "dynamic_tensorwise"),
])
def test_tflite_pick_prefers_int8_compute_once_it_agrees(agreement: dict[str, float],
                                                          expected: str) -> None:
    assert pick_tflite_mode(("dynamic_tensorwise", "weight_only"), agreement) == expected


def _row(name: str, p50: float, marc: float, sst5: float, mb: float = 6.0) -> Candidate:
    return Candidate(name=name, params=1, p50_ms=p50, onnx_int8_mb=mb,
                     dev_macro_f1=(marc + sst5) / 2, dev_by_source={"marc": marc, "sst5": sst5})


CANDIDATES = [_row("big", 0.70, 0.640, 0.630), _row("mid", 0.50, 0.632, 0.625),
              _row("small", 0.40, 0.640, 0.600), _row("huge", 0.30, 0.650, 0.640, mb=9.0)]
TEACHER = {"marc": 0.645, "sst5": 0.635}


def test_candidates_within_the_speed_tie_go_by_dev_score() -> None:
    """"big" is within 15% of "mid"'s p50 here, and closer to the teacher: noise could have
    ordered the two either way, so the better one wins."""
    for big_p50, expected in ((0.55, "big"), (0.58, "mid")):
        rows = [replace(r, p50_ms=big_p50) if r.name == "big" else r for r in CANDIDATES]
        marked, _ = choose_student(rows, TEACHER, max_onnx_mb=8.0, max_dev_gap=1.5,
                                   gap_sources=())
        assert [r.name for r in marked if r.chosen] == [expected]


@pytest.mark.parametrize("gap, sources, expected", [
    (0.0, (), "big"),  # off: the best dev macro-F1 that fits the size limit
    (1.5, (), "mid"),  # the fastest within 1.5 points on every source ("small": 3.5 on sst5)
    (4.0, (), "small"),
    (0.1, (), "big"),  # none that close: the best
    (1.5, ("marc",), "small"),  # the gap taken on marc only: "small" is 0.5 behind there
])
def test_student_choice_is_the_fastest_close_enough_to_the_teacher(
        gap: float, sources: tuple[str, ...], expected: str) -> None:
    rows, over = choose_student(CANDIDATES, TEACHER, max_onnx_mb=8.0, max_dev_gap=gap,
                                gap_sources=sources)
    assert over == sorted(sources or TEACHER)
    assert [r.chosen for r in rows] == [r.name == expected for r in rows]
    assert rows[2].dev_points_behind_teacher == (0.5 if sources else 3.5)

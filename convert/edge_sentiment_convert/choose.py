"""The build's pure choice rules: which student candidate ships, and which TFLite
quantization scheme. No I/O; the numbers come from the build's stages."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

AGREEMENT_TARGET = 0.99
# Candidates' single-text p50s within 15% of each other count as equally fast: one build's
# bench of the same shape has ranged 0.25-0.38 ms on a 2-core machine.
SPEED_TIE = 0.15


@dataclass(frozen=True)
class Candidate:
    """One student stage's result: what the choice and the card's Pareto table read."""

    name: str
    params: int
    onnx_int8_mb: float
    p50_ms: float
    dev_macro_f1: float
    dev_by_source: dict[str, float]
    distill_seconds: float = 0.0
    distill_reused: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    dev_points_behind_teacher: float | None = None  # set by choose_student
    chosen: bool = False


def choose_student(pareto: list[Candidate], teacher_dev: dict[str, float], *,
                   max_onnx_mb: float, max_dev_gap: float, gap_sources: tuple[str, ...]
                   ) -> tuple[list[Candidate], list[str]]:
    """Each candidate with its dev gap to the teacher and whether it is the one chosen (exactly
    one is), and the sources the gap was taken over (``gap_sources``, or every source the
    teacher was scored on)."""
    bar = {src: f1 for src, f1 in teacher_dev.items() if src in (gap_sources or teacher_dev)}
    marked = [replace(c, dev_points_behind_teacher=points_behind(c, bar)) for c in pareto]
    best = chosen(marked, max_onnx_mb=max_onnx_mb, max_dev_gap=max_dev_gap)
    return [replace(c, chosen=c.name == best.name) for c in marked], sorted(bar)


def chosen(pareto: list[Candidate], *, max_onnx_mb: float, max_dev_gap: float) -> Candidate:
    """Among the candidates that fit ``max_onnx_mb``: the fastest whose dev score is at most
    ``max_dev_gap`` points behind the teacher's on every source, else the best. p50s within
    ``SPEED_TIE`` of the fastest such one are a tie, broken by dev macro-F1: one bench per
    candidate cannot tell them apart."""
    fitting = [c for c in pareto if c.onnx_int8_mb <= max_onnx_mb] or pareto
    close = [c for c in fitting if max_dev_gap and (c.dev_points_behind_teacher or 0.0)
             <= max_dev_gap]
    if close:
        fastest = min(c.p50_ms for c in close)
        close = [c for c in close if c.p50_ms <= fastest * (1 + SPEED_TIE)]
    return max(close or fitting, key=lambda c: c.dev_macro_f1)


def points_behind(c: Candidate, teacher: dict[str, float]) -> float:
    """The student's largest dev score gap to the teacher over the sources, in points."""
    return round(max((100 * (f1 - c.dev_by_source[src]) for src, f1 in teacher.items()),
                     default=0.0), 2)


def pick_tflite_mode(modes: tuple[str, ...], dev_agreement: dict[str, float]) -> str:
    """The first (fastest: int8 compute before fp32 compute) scheme that reaches 99% dev
    agreement with ONNX int8; else the one that agrees most."""
    for mode in modes:
        if dev_agreement.get(mode, 0.0) >= AGREEMENT_TARGET:
            return mode
    return max(dev_agreement, key=lambda m: dev_agreement[m]) if dev_agreement else modes[0]
